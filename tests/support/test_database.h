#pragma once
// The database the server opens, for unit tests: a file in a per-test temp dir (WAL, foreign keys,
// like production; ":memory:" would skip WAL) with every migration applied, or with
// EASEL_TEST_DATABASE=postgresql a fresh schema on the test PostgreSQL server (postgres_server.h). userRow()/addUser()
// make accounts that satisfy the schema without going through AccountService.

#include <cstdint>
#include <string>

#include "postgres_server.h"
#include "storage/database.h"
#include "storage/migrations.h"
#include "storage/user_repository.h"
#include "temp_dir.h"

namespace easel::testing {

class TestDatabase {
public:
    TestDatabase()
        : m_location(testsUsePostgres() ? std::filesystem::path(PostgresServer::shared().freshSchemaUrl())
                                        : m_dir / "easel.db"),
          m_db(m_location) {
        storage::migrate(m_db);
    }

    const storage::Database& db() const { return m_db; }
    const TempDir& dir() const { return m_dir; }
    // What storage::Database opens: the file, or the PostgreSQL URL.
    const std::filesystem::path& path() const { return m_location; }

private:
    TempDir m_dir;  // before m_db: the file must outlive the connection
    std::filesystem::path m_location;
    storage::Database m_db;
};

// A users row with a key hash unique to the e-mail (the column is UNIQUE NOT NULL).
inline storage::UserRow userRow(const std::string& email, const std::string& plan = "free",
                                std::int64_t now = 1'700'000'000) {
    storage::UserRow u;
    u.email = email;
    u.passwordHash = "not-a-real-hash";
    u.plan = plan;
    u.apiKeyHash = storage::Blob(email.begin(), email.end());
    u.apiKeySealed = {1, 2, 3};
    u.createdAt = u.lastActiveAt = now;
    return u;
}

inline std::int64_t addUser(const storage::Database& db, const std::string& email, const std::string& plan = "free",
                            std::int64_t imagesUsed = 0) {
    auto row = userRow(email, plan);
    row.imagesUsed = imagesUsed;
    return storage::UserRepository(db).insert(row);
}

inline std::int64_t imagesUsed(const storage::Database& db, std::int64_t userId) {
    const auto row = storage::UserRepository(db).findById(userId);
    return row ? row->imagesUsed : -1;
}

}  // namespace easel::testing
