#pragma once
// A thin RAII layer over SQLite: one connection per Database, WAL mode, foreign keys on, a busy
// timeout so that the admin CLI can write while the server runs. Every statement is prepared with
// bound parameters (no SQL is ever built from user input). The connection is shared by the server's
// threads: one mutex serialises access, and transaction() holds it for the whole unit of work, so a
// check-then-update (quota) inside it is atomic across threads; BEGIN IMMEDIATE makes it atomic across
// processes too.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace easel::storage {

class DatabaseError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using Blob = std::vector<unsigned char>;

class Statement {
public:
    Statement(sqlite3* db, std::string_view sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Parameters are 1-based, as in SQLite.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view value);
    Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
    Statement& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
    Statement& bind(int index, const Blob& value);
    Statement& bindNull(int index);
    template <typename T>
    Statement& bind(int index, const std::optional<T>& value) {
        return value ? bind(index, *value) : bindNull(index);
    }
    template <typename... Args>
    Statement& bindAll(const Args&... args) {
        int i = 0;
        (bind(++i, args), ...);
        return *this;
    }

    // Advances to the next row; false when done. Throws on error.
    bool step();
    // Runs a statement that returns no rows; returns the number of changed rows.
    int run();

    bool isNull(int column) const;
    std::int64_t int64(int column) const;
    double real(int column) const;
    std::string text(int column) const;
    Blob blob(int column) const;
    std::optional<std::int64_t> optionalInt64(int column) const;
    std::optional<std::string> optionalText(int column) const;

private:
    sqlite3* m_db;
    sqlite3_stmt* m_stmt = nullptr;
};

class Database {
public:
    // Opens (creating) the file, or an in-memory database for ":memory:".
    explicit Database(const std::filesystem::path& path);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Locks the connection for the caller's statements. Every use of statement() needs one.
    std::unique_lock<std::recursive_mutex> lock() const { return std::unique_lock(m_mutex); }

    // Prepared statement on this connection (hold lock() while using it).
    Statement statement(std::string_view sql) const { return Statement(m_db, sql); }
    void exec(std::string_view sql) const;
    std::int64_t lastInsertId() const;

    // Runs fn inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK when it throws). Nested calls join the
    // outer transaction.
    void transaction(const std::function<void()>& fn) const;

    int schemaVersion() const;
    void setSchemaVersion(int version) const;

private:
    sqlite3* m_db = nullptr;
    mutable std::recursive_mutex m_mutex;
    mutable int m_depth = 0;
};

}  // namespace easel::storage
