#include "accounts/account_service.h"

#include <algorithm>
#include <cctype>

#include "quota/quota_ledger.h"

namespace easel::accounts {
namespace {

constexpr std::size_t kMinPassword = 8;
constexpr std::size_t kMaxPassword = 1024;  // argon2 takes any length; this bounds the work per request

std::string normalizeEmail(std::string email) {
    const auto first = email.find_first_not_of(" \t\r\n");
    const auto last = email.find_last_not_of(" \t\r\n");
    email = first == std::string::npos ? std::string() : email.substr(first, last - first + 1);
    std::transform(email.begin(), email.end(), email.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return email;
}

void validateCredentials(const std::string& email, const std::string& password) {
    std::map<std::string, std::vector<std::string>> errors;
    const auto at = email.find('@');
    const bool emailOk = email.size() <= 254 && at != std::string::npos && at > 0 &&
                         email.find('.', at) != std::string::npos && email.back() != '.' &&
                         email.find_first_of(" \t\r\n\"<>,;") == std::string::npos &&
                         email.find('@', at + 1) == std::string::npos;
    if (email.empty()) {
        errors["email"].push_back("is required");
    } else if (!emailOk) {
        errors["email"].push_back("is not a valid e-mail address");
    }
    if (password.size() < kMinPassword) errors["password"].push_back("must have at least 8 characters");
    if (password.size() > kMaxPassword) errors["password"].push_back("must have at most 1024 characters");
    if (!errors.empty()) throw validationError(std::move(errors));
}

}  // namespace

AccountService::AccountService(const storage::Database& db, PasswordHasher& hasher, const KeyVault& vault,
                               storage::BlobStore& blobs, const Clock& clock, AccountOptions options)
    : m_db(db),
      m_hasher(hasher),
      m_vault(vault),
      m_blobs(blobs),
      m_clock(clock),
      m_options(options),
      m_users(db),
      m_loginLimiter(clock, 60, options.sharedRateLimits ? &db : nullptr),
      m_dummyHash(hasher.hash(randomToken())) {}

Caller AccountService::callerFor(const storage::UserRow& row) const {
    Caller c;
    c.userId = row.id;
    c.email = row.email;
    c.plan = findPlan(row.plan);
    if (c.plan == nullptr) c.plan = &plans().front();  // a plan removed from the table: the free limits
    c.isAdmin = row.isAdmin;
    return c;
}

void AccountService::throttle(const std::string& key) const {
    refuse(m_loginLimiter.take(key, m_options.loginAttemptsPerMinute));
}

void AccountService::refuseOver(const std::string& key, int limit) const { refuse(m_loginLimiter.peek(key, limit)); }

void AccountService::refuse(const quota::RateDecision& d) {
    if (!d.allowed) {
        ServiceError e(ErrorCode::TooManyRequests,
                       "too many attempts; try again in " + std::to_string(d.resetSeconds) + " seconds");
        e.retryAfterSeconds = std::max(1, d.resetSeconds);
        throw e;
    }
}

storage::UserRow AccountService::requireUser(std::int64_t userId) const {
    auto row = m_users.findById(userId);
    if (!row || row->deleting) throw ServiceError(ErrorCode::Unauthorized, "the account no longer exists");
    return *row;
}

void AccountService::checkPassword(const storage::UserRow& row, const std::string& password) {
    if (!m_hasher.verify(row.passwordHash, password)) {
        throw ServiceError(ErrorCode::Unauthorized, "the password is wrong");
    }
}

NewAccount AccountService::signup(const std::string& email, const std::string& password, const std::string& clientIp) {
    if (!m_options.openSignup) {
        throw ServiceError(ErrorCode::Forbidden,
                           "sign-up is closed on this server; ask an administrator for an account");
    }
    throttle("signup-ip:" + clientIp);
    return createUser(email, password, "free");
}

NewAccount AccountService::createUser(const std::string& emailIn, const std::string& password, const std::string& plan,
                                      bool isAdmin) {
    const auto email = normalizeEmail(emailIn);
    validateCredentials(email, password);
    if (findPlan(plan) == nullptr) {
        throw validationError({{"plan", {"must be one of " + planNames()}}});
    }
    const auto hash = m_hasher.hash(password);  // outside the lock: hashing is the slow part
    const auto key = randomToken();
    NewAccount out{0, email, plan, key};
    m_db.transaction([&] {
        if (m_users.findByEmail(email)) {
            throw ServiceError(ErrorCode::Conflict, "an account with this e-mail already exists");
        }
        storage::UserRow row;
        row.email = email;
        row.passwordHash = hash;
        row.plan = plan;
        row.isAdmin = isAdmin;
        row.apiKeyHash = m_vault.lookupHash(key);
        row.apiKeySealed = m_vault.seal(key);
        row.createdAt = row.lastActiveAt = m_clock.nowSeconds();
        out.userId = m_users.insert(row);
    });
    return out;
}

std::string AccountService::login(const std::string& emailIn, const std::string& password,
                                  const std::string& clientIp) {
    const auto email = normalizeEmail(emailIn);
    throttle("login-ip:" + clientIp);  // every attempt from one address
    // Per account only failures count, and per address: a stranger's wrong guesses cannot lock the owner
    // out. Guessing spread over many addresses meets the wider per-account bound (10x, so it needs
    // ten or more addresses to reach it).
    const int limit = m_options.loginAttemptsPerMinute;
    const auto pairKey = "login-fail:" + clientIp + "|" + email;
    const auto accountKey = "login-fail:" + email;
    refuseOver(pairKey, limit);
    refuseOver(accountKey, 10 * limit);
    auto fail = [&] {
        m_loginLimiter.take(pairKey, limit);
        m_loginLimiter.take(accountKey, 10 * limit);
        return ServiceError(ErrorCode::Unauthorized, "wrong e-mail or password");
    };
    const auto row = m_users.findByEmail(email);
    if (!row || row->deleting) {
        m_hasher.verify(m_dummyHash, password);  // same work as a real check
        throw fail();
    }
    if (!m_hasher.verify(row->passwordHash, password)) throw fail();
    const auto token = randomToken();
    const auto now = m_clock.nowSeconds();
    storage::SessionRepository{m_db}.insert(m_vault.lookupHash(token), row->id, now, now + m_options.sessionSeconds);
    m_users.touch(row->id, now);
    return token;
}

void AccountService::logout(const std::string& token) {
    storage::SessionRepository{m_db}.remove(m_vault.lookupHash(token));
}

Caller AccountService::authenticateKey(const std::string& apiKey) const {
    if (apiKey.empty() || apiKey.size() > 256)
        throw ServiceError(ErrorCode::Unauthorized, "a valid API key is required");
    const auto hash = m_vault.lookupHash(apiKey);
    const auto row = m_users.findByKeyHash(hash);
    // The lookup is by a keyed hash of the key; the final check is constant-time on top of it.
    if (!row || !equalSecrets(row->apiKeyHash, hash)) {
        throw ServiceError(ErrorCode::Unauthorized, "invalid API key");
    }
    m_users.touch(row->id, m_clock.nowSeconds());
    return callerFor(*row);
}

Caller AccountService::authenticateToken(const std::string& token) const {
    if (token.empty() || token.size() > 256) throw ServiceError(ErrorCode::Unauthorized, "please log in");
    const auto userId = storage::SessionRepository{m_db}.userFor(m_vault.lookupHash(token), m_clock.nowSeconds());
    if (!userId) throw ServiceError(ErrorCode::Unauthorized, "the session has expired or was ended; please log in");
    const auto row = requireUser(*userId);
    m_users.touch(row.id, m_clock.nowSeconds());
    return callerFor(row);
}

AccountView AccountService::account(std::int64_t userId) const {
    const auto row = requireUser(userId);
    const auto c = callerFor(row);
    return {row.id, row.email, c.plan, row.imagesUsed, row.isAdmin, row.createdAt};
}

std::optional<std::string> AccountService::changePassword(std::int64_t userId, const std::string& currentToken,
                                                          const std::string& oldPassword,
                                                          const std::string& newPassword, bool alsoReplaceKey) {
    const auto row = requireUser(userId);
    if (newPassword.size() < kMinPassword || newPassword.size() > kMaxPassword) {
        throw validationError({{"new_password", {"must have between 8 and 1024 characters"}}});
    }
    throttle("password:" + std::to_string(userId));
    checkPassword(row, oldPassword);
    const auto hash = m_hasher.hash(newPassword);
    std::optional<std::string> key;
    // One transaction: a leaked password and key are replaced together or not at all.
    m_db.transaction([&] {
        m_users.setPasswordHash(userId, hash);
        storage::SessionRepository{m_db}.removeForUser(
            userId, currentToken.empty() ? storage::Blob{} : m_vault.lookupHash(currentToken));
        if (alsoReplaceKey) key = replaceKey(userId);
    });
    return key;
}

std::string AccountService::replaceKey(std::int64_t userId) {
    const auto key = randomToken();
    m_users.setApiKey(userId, m_vault.lookupHash(key), m_vault.seal(key));
    return key;
}

std::string AccountService::viewKey(std::int64_t userId, const std::string& password) {
    const auto row = requireUser(userId);
    throttle("password:" + std::to_string(userId));
    checkPassword(row, password);
    return m_vault.open(row.apiKeySealed);
}

std::string AccountService::regenerateKey(std::int64_t userId, const std::string& password) {
    // Like viewing it: whoever holds only a stolen session token must not get a working key.
    const auto row = requireUser(userId);
    throttle("password:" + std::to_string(userId));
    checkPassword(row, password);
    return replaceKey(userId);
}

std::vector<storage::UsageRow> AccountService::usage(std::int64_t userId, int limit, int offset) const {
    return quota::QuotaLedger(m_db).usage(userId, limit, offset);
}

std::int64_t AccountService::usageCount(std::int64_t userId) const {
    return quota::QuotaLedger(m_db).usageCount(userId);
}

void AccountService::deleteAccount(std::int64_t userId, const std::string& password) {
    const auto row = requireUser(userId);
    throttle("password:" + std::to_string(userId));
    checkPassword(row, password);
    purge(userId);
}

void AccountService::purge(std::int64_t userId) {
    // Order matters for crash safety: mark first (the key stops working, the sweeper knows to finish),
    // stop the account's jobs, remove the files, then the rows (foreign keys cascade to sessions,
    // usage, jobs, images, uploads).
    m_users.markDeleting(userId);
    for (const auto& hook : m_purgeHooks) hook(userId);
    m_blobs.removeOwner(userId);
    m_users.remove(userId);
}

void AccountService::setPlan(const std::string& email, const std::string& plan) {
    if (findPlan(plan) == nullptr) throw validationError({{"plan", {"must be one of " + planNames()}}});
    const auto row = m_users.findByEmail(normalizeEmail(email));
    if (!row) throw ServiceError(ErrorCode::NotFound, "no account with the e-mail " + email);
    m_users.setPlan(row->id, plan);
}

std::vector<storage::UserRow> AccountService::listUsers() const { return m_users.list(); }

int AccountService::sweep() {
    storage::SessionRepository{m_db}.removeExpired(m_clock.nowSeconds());
    int purged = 0;
    for (const auto id : m_users.idsMarkedDeleting()) {
        purge(id);
        ++purged;
    }
    if (m_options.inactiveFreeDays > 0) {
        const auto before = m_clock.nowSeconds() - m_options.inactiveFreeDays * 24 * 3600;
        for (const auto id : m_users.inactiveSince(before, {"free"})) {
            purge(id);
            ++purged;
        }
    }
    return purged;
}

}  // namespace easel::accounts
