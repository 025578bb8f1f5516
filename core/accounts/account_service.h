#pragma once
// Accounts, sessions and API keys: every decision about who someone is. The HTTP controllers and the
// admin CLI call this; neither touches SQL or secrets directly.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "accounts/crypto.h"
#include "accounts/plans.h"
#include "common/clock.h"
#include "common/service_error.h"
#include "quota/rate_limiter.h"
#include "storage/blob_store.h"
#include "storage/database.h"
#include "storage/user_repository.h"

namespace easel::accounts {

struct AccountOptions {
    bool openSignup = true;
    // Several servers share the database: login attempts per e-mail and IP are counted in it.
    bool sharedRateLimits = false;
    std::int64_t sessionSeconds = 30 * 24 * 3600;
    std::int64_t inactiveFreeDays = 365;  // free accounts idle this long are deleted; subscribers never
    int loginAttemptsPerMinute = 10;      // per IP and per e-mail
};

// Who is calling, as the services need it.
struct Caller {
    std::int64_t userId = 0;
    std::string email;
    const Plan* plan = nullptr;
    bool isAdmin = false;
};

struct NewAccount {
    std::int64_t userId = 0;
    std::string email;
    std::string plan;
    std::string apiKey;
};

struct AccountView {
    std::int64_t userId = 0;
    std::string email;
    const Plan* plan = nullptr;
    std::int64_t imagesUsed = 0;
    bool isAdmin = false;
    std::int64_t createdAt = 0;
};

class AccountService {
public:
    AccountService(const storage::Database& db, PasswordHasher& hasher, const KeyVault& vault,
                   storage::BlobStore& blobs, const Clock& clock, AccountOptions options = {});

    NewAccount signup(const std::string& email, const std::string& password, const std::string& clientIp);
    NewAccount createUser(const std::string& email, const std::string& password, const std::string& plan,
                          bool isAdmin = false);
    // A session token for the dashboard calls.
    std::string login(const std::string& email, const std::string& password, const std::string& clientIp);
    void logout(const std::string& token);

    Caller authenticateKey(const std::string& apiKey) const;
    Caller authenticateToken(const std::string& token) const;

    AccountView account(std::int64_t userId) const;
    // Needs the current password; ends every other session of the account and, when asked (a leak),
    // replaces the API key too, in the same transaction. Returns the new key when it was replaced.
    std::optional<std::string> changePassword(std::int64_t userId, const std::string& currentToken,
                                              const std::string& oldPassword, const std::string& newPassword,
                                              bool alsoReplaceKey = false);
    std::string viewKey(std::int64_t userId, const std::string& password);
    // Needs the password, like viewing the key. The old key is rejected from the moment this returns.
    std::string regenerateKey(std::int64_t userId, const std::string& password);
    // Signs the account's webhooks (shown on the account page).
    std::string webhookSecret(std::int64_t userId) const { return m_vault.webhookSecret(userId); }
    std::vector<storage::UsageRow> usage(std::int64_t userId, int limit, int offset) const;
    std::int64_t usageCount(std::int64_t userId) const;

    // Checks the password, then purges everything the account owns.
    void deleteAccount(std::int64_t userId, const std::string& password);
    // Purges without a password (admin, inactivity, the sweeper).
    void purge(std::int64_t userId);
    // Called first during a purge (e.g. the job layer cancels the account's running jobs).
    void addPurgeHook(std::function<void(std::int64_t)> hook) { m_purgeHooks.push_back(std::move(hook)); }

    void setPlan(const std::string& email, const std::string& plan);
    std::vector<storage::UserRow> listUsers() const;

    // Deletes expired sessions, finishes purges a crash interrupted and deletes inactive free
    // accounts. Returns accounts purged.
    int sweep();

private:
    std::string replaceKey(std::int64_t userId);
    Caller callerFor(const storage::UserRow& row) const;
    void throttle(const std::string& key) const;
    // Refuses when `key` has used `limit` in this minute, without counting this attempt.
    void refuseOver(const std::string& key, int limit) const;
    static void refuse(const quota::RateDecision& d);
    storage::UserRow requireUser(std::int64_t userId) const;
    void checkPassword(const storage::UserRow& row, const std::string& password);

    const storage::Database& m_db;
    PasswordHasher& m_hasher;
    const KeyVault& m_vault;
    storage::BlobStore& m_blobs;
    const Clock& m_clock;
    AccountOptions m_options;
    storage::UserRepository m_users;
    mutable quota::RateLimiter m_loginLimiter;
    std::string m_dummyHash;  // verified against when the e-mail is unknown, so timing does not tell
    std::vector<std::function<void(std::int64_t)>> m_purgeHooks;
};

}  // namespace easel::accounts
