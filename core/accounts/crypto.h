#pragma once
// The account secrets, all through libsodium:
// - PasswordHasher: argon2id (OWASP: 19 MiB, 2 passes, 1 lane) with a cap on concurrent hashes, so a
//   burst of logins cannot exhaust memory or starve the workers.
// - KeyVault: a 32-byte server key kept in a 0600 file beside the database. From it: a keyed BLAKE2b
//   hash to look API keys and session tokens up (the database holds no usable secret), and
//   XSalsa20-Poly1305 sealing so that the owner can view the API key again; a copy of the database
//   alone reveals no key.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <semaphore>
#include <string>
#include <vector>

#include "common/random_token.h"

namespace easel::accounts {

using Bytes = std::vector<unsigned char>;

struct PasswordCost {
    unsigned long long opsLimit = 2;
    std::size_t memLimit = 19u * 1024 * 1024;
    static PasswordCost fastForTests() { return {1, 64u * 1024}; }
};

class PasswordHasher {
public:
    explicit PasswordHasher(PasswordCost cost = {}, int maxConcurrent = 2);
    std::string hash(const std::string& password);
    bool verify(const std::string& hash, const std::string& password);

private:
    PasswordCost m_cost;
    std::counting_semaphore<64> m_slots;
};

class KeyVault {
public:
    // Loads the key file, creating it (0600) on first use.
    static KeyVault openOrCreate(const std::filesystem::path& keyFile);
    explicit KeyVault(Bytes masterKey);

    Bytes lookupHash(const std::string& secret) const;
    // The account's webhook signing secret (hex), derived, so nothing extra is stored.
    std::string webhookSecret(std::int64_t userId) const;
    Bytes seal(const std::string& plaintext) const;
    // Throws std::runtime_error when the box was not sealed with this key.
    std::string open(const Bytes& sealed) const;

private:
    Bytes m_hashKey;
    Bytes m_boxKey;
};

using easel::randomToken;
// Constant-time comparison.
bool equalSecrets(const Bytes& a, const Bytes& b);

}  // namespace easel::accounts
