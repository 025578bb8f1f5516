#pragma once
// A thin RAII layer over the two databases Easel runs on:
// - SQLite (the default: one file in the data dir, WAL mode, foreign keys on, a busy timeout so that the
//   admin CLI can write while the server runs; BEGIN IMMEDIATE makes a transaction atomic across
//   processes);
// - PostgreSQL (a "postgresql://..." location; libpq), for many server processes on one database.
// Every statement is prepared with bound parameters (no SQL is ever built from user input) and written
// once in the SQL both accept: `?` (or `?N`) placeholders, which the PostgreSQL side numbers `$N`.
// What differs (the schema's column types, row locks) asks dialect().
// One connection per Database, shared by the process's threads: one mutex serialises access, and
// transaction() holds it for the whole unit of work, so a check-then-update (quota) inside it is atomic
// across threads.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace easel::storage {

class DatabaseError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using Blob = std::vector<unsigned char>;

enum class Dialect { SQLite, PostgreSQL };

// The type of a bound NULL: PostgreSQL must know it where the SQL alone does not say (`? IS NULL`).
enum class ValueType { Unknown, Integer, Real, Text, Bytes };

template <typename T>
constexpr ValueType valueTypeOf() {
    if constexpr (std::is_floating_point_v<T>) {
        return ValueType::Real;
    } else if constexpr (std::is_integral_v<T>) {
        return ValueType::Integer;
    } else if constexpr (std::is_same_v<T, Blob>) {
        return ValueType::Bytes;
    } else {
        return ValueType::Text;
    }
}

namespace detail {

// One prepared statement of one backend (database.cpp, postgres_connection.cpp).
class StatementImpl {
public:
    virtual ~StatementImpl() = default;
    virtual void bindInt64(int index, std::int64_t value) = 0;
    virtual void bindReal(int index, double value) = 0;
    virtual void bindText(int index, std::string_view value) = 0;
    virtual void bindBytes(int index, const Blob& value) = 0;
    virtual void bindNull(int index, ValueType type) = 0;
    virtual bool step() = 0;
    virtual int run() = 0;
    virtual bool isNull(int column) const = 0;
    virtual std::int64_t int64(int column) const = 0;
    virtual double real(int column) const = 0;
    virtual std::string text(int column) const = 0;
    virtual Blob blob(int column) const = 0;
};

// One connection of one backend.
class Connection {
public:
    virtual ~Connection() = default;
    virtual Dialect dialect() const = 0;
    virtual std::unique_ptr<StatementImpl> prepare(std::string_view sql) = 0;
    virtual void exec(std::string_view sql) = 0;
    virtual void begin() = 0;
    virtual void commit() = 0;
    virtual void rollback() noexcept = 0;
    virtual int schemaVersion() = 0;
    virtual void setSchemaVersion(int version) = 0;
};

std::unique_ptr<Connection> openSqlite(const std::filesystem::path& path);
std::unique_ptr<Connection> openPostgres(const std::string& url);

}  // namespace detail

class Statement {
public:
    explicit Statement(std::unique_ptr<detail::StatementImpl> impl);
    ~Statement();
    Statement(Statement&&) noexcept;
    Statement& operator=(Statement&&) noexcept;

    // Parameters are 1-based, as in SQLite.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view value);
    Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
    Statement& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
    Statement& bind(int index, const Blob& value);
    Statement& bindNull(int index, ValueType type = ValueType::Unknown);
    template <typename T>
    Statement& bind(int index, const std::optional<T>& value) {
        return value ? bind(index, *value) : bindNull(index, valueTypeOf<T>());
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
    std::unique_ptr<detail::StatementImpl> m_impl;
};

// The id that an "INSERT ... RETURNING id" statement produced (both dialects have RETURNING).
std::int64_t insertedId(Statement& insert);

class Database {
public:
    // A "postgresql://" (or "postgres://") URL connects to PostgreSQL (libpq's URI form:
    // postgresql://user:password@host:port/dbname?sslmode=...); anything else is a SQLite file,
    // created when missing, or an in-memory database for ":memory:".
    explicit Database(const std::filesystem::path& location);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    static bool isPostgresUrl(std::string_view location);
    // The location (a URL of any scheme) with any password left out, for logs and messages.
    static std::string describe(std::string_view location);

    Dialect dialect() const { return m_dialect; }

    // Locks the connection for the caller's statements. Every use of statement() needs one.
    std::unique_lock<std::recursive_mutex> lock() const { return std::unique_lock(m_mutex); }

    // Prepared statement on this connection (hold lock() while using it).
    Statement statement(std::string_view sql) const;
    // One or more statements without parameters.
    void exec(std::string_view sql) const;

    // Runs fn inside one transaction (SQLite: BEGIN IMMEDIATE) and commits it, or rolls it back when fn
    // throws. Nested calls join the outer transaction.
    void transaction(const std::function<void()>& fn) const;

    int schemaVersion() const;
    void setSchemaVersion(int version) const;

private:
    std::unique_ptr<detail::Connection> m_connection;
    Dialect m_dialect;
    mutable std::recursive_mutex m_mutex;
    mutable int m_depth = 0;
};

}  // namespace easel::storage
