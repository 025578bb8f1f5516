#pragma once
// Rows of the users table. SQL lives here and in the other repositories only.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/database.h"

namespace easel::storage {

struct UserRow {
    std::int64_t id = 0;
    std::string email;
    std::string passwordHash;
    std::string plan;
    bool isAdmin = false;
    Blob apiKeyHash;
    Blob apiKeySealed;
    std::int64_t imagesUsed = 0;
    std::int64_t createdAt = 0;
    std::int64_t lastActiveAt = 0;
    bool deleting = false;
};

class UserRepository {
public:
    explicit UserRepository(const Database& db) : m_db(db) {}

    // Throws DatabaseError on a duplicate e-mail; use findByEmail first for a clean message.
    std::int64_t insert(const UserRow& row) const;
    std::optional<UserRow> findById(std::int64_t id) const;
    std::optional<UserRow> findByEmail(const std::string& email) const;
    std::optional<UserRow> findByKeyHash(const Blob& keyHash) const;
    std::vector<UserRow> list() const;

    void setPlan(std::int64_t id, const std::string& plan) const;
    void setPasswordHash(std::int64_t id, const std::string& hash) const;
    void setApiKey(std::int64_t id, const Blob& hash, const Blob& sealed) const;
    void touch(std::int64_t id, std::int64_t now) const;
    void markDeleting(std::int64_t id) const;
    void remove(std::int64_t id) const;

    // Adds `images` to the user's count only while the result stays within `limit` (no limit when
    // empty). Returns false, changing nothing, when it would exceed it. Atomic in one UPDATE.
    bool charge(std::int64_t id, std::int64_t images, std::optional<std::int64_t> limit) const;
    void refund(std::int64_t id, std::int64_t images) const;

    std::vector<std::int64_t> idsMarkedDeleting() const;
    // Accounts on one of `plans` whose last activity is before `before`.
    std::vector<std::int64_t> inactiveSince(std::int64_t before, const std::vector<std::string>& plans) const;

private:
    const Database& m_db;
};

struct SessionRepository {
    const Database& db;
    void insert(const Blob& tokenHash, std::int64_t userId, std::int64_t now, std::int64_t expiresAt) const;
    // The session's user while it has not expired.
    std::optional<std::int64_t> userFor(const Blob& tokenHash, std::int64_t now) const;
    void remove(const Blob& tokenHash) const;
    // Ends every session of the user except `keep` (empty: all).
    void removeForUser(std::int64_t userId, const Blob& keep = {}) const;
    // Deletes the sessions that expired by `now`; returns how many.
    int removeExpired(std::int64_t now) const;
};

struct UsageRow {
    std::int64_t id = 0;
    std::optional<std::int64_t> requestId;
    std::string kind;
    std::int64_t images = 0;
    std::int64_t createdAt = 0;
};

struct UsageRepository {
    const Database& db;
    void add(std::int64_t userId, std::optional<std::int64_t> requestId, const std::string& kind, std::int64_t images,
             std::int64_t now) const;
    std::vector<UsageRow> list(std::int64_t userId, int limit, int offset) const;
    std::int64_t count(std::int64_t userId) const;
};

}  // namespace easel::storage
