#include "storage/database.h"

#include <sqlite3.h>

namespace easel::storage {
namespace {

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
    throw DatabaseError(std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : m_db(db) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &m_stmt, nullptr) != SQLITE_OK) {
        fail(db, "preparing SQL");
    }
}

Statement::~Statement() { sqlite3_finalize(m_stmt); }

Statement& Statement::bind(int index, std::int64_t value) {
    if (sqlite3_bind_int64(m_stmt, index, value) != SQLITE_OK) fail(m_db, "binding");
    return *this;
}

Statement& Statement::bind(int index, double value) {
    if (sqlite3_bind_double(m_stmt, index, value) != SQLITE_OK) fail(m_db, "binding");
    return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
    if (sqlite3_bind_text64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8) != SQLITE_OK) {
        fail(m_db, "binding");
    }
    return *this;
}

Statement& Statement::bind(int index, const Blob& value) {
    if (sqlite3_bind_blob64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT) != SQLITE_OK) {
        fail(m_db, "binding");
    }
    return *this;
}

Statement& Statement::bindNull(int index) {
    if (sqlite3_bind_null(m_stmt, index) != SQLITE_OK) fail(m_db, "binding");
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(m_db, "running SQL");
}

int Statement::run() {
    while (step()) {
    }
    return sqlite3_changes(m_db);
}

bool Statement::isNull(int column) const { return sqlite3_column_type(m_stmt, column) == SQLITE_NULL; }
std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(m_stmt, column); }
double Statement::real(int column) const { return sqlite3_column_double(m_stmt, column); }

std::string Statement::text(int column) const {
    const auto* p = sqlite3_column_text(m_stmt, column);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p),
                                      static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, column)));
}

Blob Statement::blob(int column) const {
    const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(m_stmt, column));
    return p == nullptr ? Blob() : Blob(p, p + sqlite3_column_bytes(m_stmt, column));
}

std::optional<std::int64_t> Statement::optionalInt64(int column) const {
    return isNull(column) ? std::nullopt : std::optional(int64(column));
}

std::optional<std::string> Statement::optionalText(int column) const {
    return isNull(column) ? std::nullopt : std::optional(text(column));
}

Database::Database(const std::filesystem::path& path) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &m_db, flags, nullptr) != SQLITE_OK) {
        const std::string message = m_db != nullptr ? sqlite3_errmsg(m_db) : "out of memory";
        sqlite3_close(m_db);
        throw DatabaseError("cannot open database " + path.string() + ": " + message);
    }
    sqlite3_busy_timeout(m_db, 10'000);
    exec("PRAGMA foreign_keys = ON");
    if (path != ":memory:") {
        exec("PRAGMA journal_mode = WAL");
        exec("PRAGMA synchronous = NORMAL");  // durable at every checkpoint; safe against corruption in WAL
    }
}

Database::~Database() { sqlite3_close(m_db); }

void Database::exec(std::string_view sql) const {
    const auto l = lock();
    const std::string s(sql);
    char* error = nullptr;
    if (sqlite3_exec(m_db, s.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        const std::string message = error != nullptr ? error : "unknown error";
        sqlite3_free(error);
        throw DatabaseError("SQL failed: " + message);
    }
}

std::int64_t Database::lastInsertId() const { return sqlite3_last_insert_rowid(m_db); }

void Database::transaction(const std::function<void()>& fn) const {
    const auto l = lock();
    if (m_depth > 0) {
        ++m_depth;
        try {
            fn();
        } catch (...) {
            --m_depth;
            throw;
        }
        --m_depth;
        return;
    }
    exec("BEGIN IMMEDIATE");
    m_depth = 1;
    try {
        fn();
        m_depth = 0;
        exec("COMMIT");
    } catch (...) {
        m_depth = 0;
        sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

int Database::schemaVersion() const {
    const auto l = lock();
    auto s = statement("PRAGMA user_version");
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

void Database::setSchemaVersion(int version) const { exec("PRAGMA user_version = " + std::to_string(version)); }

}  // namespace easel::storage
