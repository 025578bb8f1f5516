#pragma once
// A real AccountService for unit tests: argon2id at its cheapest, a fixed server key, and whatever
// database, blob store and (fake) clock the test gives it.

#include "accounts/account_service.h"
#include "accounts/crypto.h"

namespace easel::testing {

class TestAccounts {
public:
    TestAccounts(const storage::Database& db, storage::BlobStore& blobs, const Clock& clock,
                 accounts::AccountOptions options = {})
        : m_service(db, m_hasher, m_vault, blobs, clock, options) {}

    accounts::AccountService& service() { return m_service; }
    accounts::AccountService* operator->() { return &m_service; }
    const accounts::KeyVault& vault() const { return m_vault; }

private:
    accounts::PasswordHasher m_hasher{accounts::PasswordCost::fastForTests()};
    accounts::KeyVault m_vault{accounts::Bytes(32, 7)};
    accounts::AccountService m_service;  // last: it uses the two above
};

}  // namespace easel::testing
