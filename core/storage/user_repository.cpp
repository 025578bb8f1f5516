#include "storage/user_repository.h"

namespace easel::storage {
namespace {

constexpr const char* kUserColumns =
    "id, email, password_hash, plan, is_admin, api_key_hash, api_key_sealed, images_used, created_at, "
    "last_active_at, deleting";

UserRow readUser(const Statement& s) {
    UserRow u;
    u.id = s.int64(0);
    u.email = s.text(1);
    u.passwordHash = s.text(2);
    u.plan = s.text(3);
    u.isAdmin = s.int64(4) != 0;
    u.apiKeyHash = s.blob(5);
    u.apiKeySealed = s.blob(6);
    u.imagesUsed = s.int64(7);
    u.createdAt = s.int64(8);
    u.lastActiveAt = s.int64(9);
    u.deleting = s.int64(10) != 0;
    return u;
}

template <typename T>
std::optional<UserRow> findOne(const Database& db, const std::string& where, const T& value) {
    const auto l = db.lock();
    auto s = db.statement(std::string("SELECT ") + kUserColumns + " FROM users WHERE " + where);
    s.bind(1, value);
    if (!s.step()) return std::nullopt;
    return readUser(s);
}

}  // namespace

std::int64_t UserRepository::insert(const UserRow& u) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "INSERT INTO users (email, password_hash, plan, is_admin, api_key_hash, api_key_sealed, images_used, "
        "created_at, last_active_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    s.bindAll(u.email, u.passwordHash, u.plan, static_cast<std::int64_t>(u.isAdmin), u.apiKeyHash, u.apiKeySealed,
              u.imagesUsed, u.createdAt, u.lastActiveAt);
    return insertedId(s);
}

std::optional<UserRow> UserRepository::findById(std::int64_t id) const { return findOne(m_db, "id = ?", id); }

std::optional<UserRow> UserRepository::findByEmail(const std::string& email) const {
    // SQLite's column is COLLATE NOCASE; PostgreSQL's index is on lower(email).
    return findOne(m_db, m_db.dialect() == Dialect::PostgreSQL ? "lower(email) = lower(?)" : "email = ?", email);
}

std::optional<UserRow> UserRepository::findByKeyHash(const Blob& keyHash) const {
    return findOne(m_db, "api_key_hash = ? AND deleting = 0", keyHash);
}

std::vector<UserRow> UserRepository::list() const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kUserColumns + " FROM users ORDER BY id");
    std::vector<UserRow> out;
    while (s.step()) out.push_back(readUser(s));
    return out;
}

void UserRepository::setPlan(std::int64_t id, const std::string& plan) const {
    const auto l = m_db.lock();
    m_db.statement("UPDATE users SET plan = ? WHERE id = ?").bindAll(plan, id).run();
}

void UserRepository::setPasswordHash(std::int64_t id, const std::string& hash) const {
    const auto l = m_db.lock();
    m_db.statement("UPDATE users SET password_hash = ? WHERE id = ?").bindAll(hash, id).run();
}

void UserRepository::setApiKey(std::int64_t id, const Blob& hash, const Blob& sealed) const {
    const auto l = m_db.lock();
    m_db.statement("UPDATE users SET api_key_hash = ?, api_key_sealed = ? WHERE id = ?")
        .bindAll(hash, sealed, id)
        .run();
}

void UserRepository::touch(std::int64_t id, std::int64_t now) const {
    const auto l = m_db.lock();
    m_db.statement("UPDATE users SET last_active_at = ? WHERE id = ? AND last_active_at < ?")
        .bindAll(now, id, now)
        .run();
}

void UserRepository::markDeleting(std::int64_t id) const {
    const auto l = m_db.lock();
    m_db.statement("UPDATE users SET deleting = 1 WHERE id = ?").bindAll(id).run();
}

void UserRepository::remove(std::int64_t id) const {
    const auto l = m_db.lock();
    m_db.statement("DELETE FROM users WHERE id = ?").bindAll(id).run();
}

bool UserRepository::charge(std::int64_t id, std::int64_t images, std::optional<std::int64_t> limit) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "UPDATE users SET images_used = images_used + ? WHERE id = ? AND deleting = 0 AND "
        "(? IS NULL OR images_used + ? <= ?)");
    s.bind(1, images).bind(2, id).bind(3, limit).bind(4, images).bind(5, limit);
    return s.run() == 1;
}

void UserRepository::refund(std::int64_t id, std::int64_t images) const {
    const auto l = m_db.lock();
    m_db.statement(
            "UPDATE users SET images_used = CASE WHEN images_used > ? THEN images_used - ? ELSE 0 END WHERE id = ?")
        .bindAll(images, images, id)
        .run();
}

std::vector<std::int64_t> UserRepository::idsMarkedDeleting() const {
    const auto l = m_db.lock();
    auto s = m_db.statement("SELECT id FROM users WHERE deleting = 1");
    std::vector<std::int64_t> out;
    while (s.step()) out.push_back(s.int64(0));
    return out;
}

std::vector<std::int64_t> UserRepository::inactiveSince(std::int64_t before,
                                                        const std::vector<std::string>& plans) const {
    const auto l = m_db.lock();
    std::vector<std::int64_t> out;
    for (const auto& plan : plans) {
        auto s = m_db.statement("SELECT id FROM users WHERE last_active_at < ? AND plan = ? AND is_admin = 0");
        s.bindAll(before, plan);
        while (s.step()) out.push_back(s.int64(0));
    }
    return out;
}

void SessionRepository::insert(const Blob& tokenHash, std::int64_t userId, std::int64_t now,
                               std::int64_t expiresAt) const {
    const auto l = db.lock();
    db.statement("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
        .bindAll(tokenHash, userId, now, expiresAt)
        .run();
}

std::optional<std::int64_t> SessionRepository::userFor(const Blob& tokenHash, std::int64_t now) const {
    const auto l = db.lock();
    auto s = db.statement("SELECT user_id FROM sessions WHERE token_hash = ? AND expires_at > ?");
    s.bindAll(tokenHash, now);
    if (!s.step()) return std::nullopt;
    return s.int64(0);
}

void SessionRepository::remove(const Blob& tokenHash) const {
    const auto l = db.lock();
    db.statement("DELETE FROM sessions WHERE token_hash = ?").bindAll(tokenHash).run();
}

void SessionRepository::removeForUser(std::int64_t userId, const Blob& keep) const {
    const auto l = db.lock();
    db.statement("DELETE FROM sessions WHERE user_id = ? AND token_hash != ?").bindAll(userId, keep).run();
}

int SessionRepository::removeExpired(std::int64_t now) const {
    const auto l = db.lock();
    return db.statement("DELETE FROM sessions WHERE expires_at <= ?").bindAll(now).run();
}

void UsageRepository::add(std::int64_t userId, std::optional<std::int64_t> requestId, const std::string& kind,
                          std::int64_t images, std::int64_t now) const {
    const auto l = db.lock();
    auto s = db.statement("INSERT INTO usage (user_id, request_id, kind, images, created_at) VALUES (?, ?, ?, ?, ?)");
    s.bind(1, userId).bind(2, requestId).bind(3, kind).bind(4, images).bind(5, now).run();
}

std::vector<UsageRow> UsageRepository::list(std::int64_t userId, int limit, int offset) const {
    const auto l = db.lock();
    auto s = db.statement(
        "SELECT id, request_id, kind, images, created_at FROM usage WHERE user_id = ? ORDER BY id DESC LIMIT ? "
        "OFFSET ?");
    s.bindAll(userId, limit, offset);
    std::vector<UsageRow> out;
    while (s.step()) out.push_back({s.int64(0), s.optionalInt64(1), s.text(2), s.int64(3), s.int64(4)});
    return out;
}

std::int64_t UsageRepository::count(std::int64_t userId) const {
    const auto l = db.lock();
    auto s = db.statement("SELECT COUNT(*) FROM usage WHERE user_id = ?");
    s.bindAll(userId);
    return s.step() ? s.int64(0) : 0;
}

}  // namespace easel::storage
