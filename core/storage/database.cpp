#include "storage/database.h"

#include <sqlite3.h>

namespace easel::storage {
namespace {

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
    throw DatabaseError(std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

class SqliteStatement final : public detail::StatementImpl {
public:
    SqliteStatement(sqlite3* db, std::string_view sql) : m_db(db) {
        if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &m_stmt, nullptr) != SQLITE_OK) {
            fail(db, "preparing SQL");
        }
    }
    ~SqliteStatement() override { sqlite3_finalize(m_stmt); }
    SqliteStatement(const SqliteStatement&) = delete;
    SqliteStatement& operator=(const SqliteStatement&) = delete;

    void bindInt64(int index, std::int64_t value) override { check(sqlite3_bind_int64(m_stmt, index, value)); }
    void bindReal(int index, double value) override { check(sqlite3_bind_double(m_stmt, index, value)); }
    void bindText(int index, std::string_view value) override {
        check(sqlite3_bind_text64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    }
    void bindBytes(int index, const Blob& value) override {
        check(sqlite3_bind_blob64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT));
    }
    void bindNull(int index, ValueType) override { check(sqlite3_bind_null(m_stmt, index)); }

    bool step() override {
        const int rc = sqlite3_step(m_stmt);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail(m_db, "running SQL");
    }
    int run() override {
        while (step()) {
        }
        return sqlite3_changes(m_db);
    }

    bool isNull(int column) const override { return sqlite3_column_type(m_stmt, column) == SQLITE_NULL; }
    std::int64_t int64(int column) const override { return sqlite3_column_int64(m_stmt, column); }
    double real(int column) const override { return sqlite3_column_double(m_stmt, column); }
    std::string text(int column) const override {
        const auto* p = sqlite3_column_text(m_stmt, column);
        return p == nullptr ? std::string()
                            : std::string(reinterpret_cast<const char*>(p),
                                          static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, column)));
    }
    Blob blob(int column) const override {
        const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(m_stmt, column));
        return p == nullptr ? Blob() : Blob(p, p + sqlite3_column_bytes(m_stmt, column));
    }

private:
    void check(int rc) const {
        if (rc != SQLITE_OK) fail(m_db, "binding");
    }
    sqlite3* m_db;
    sqlite3_stmt* m_stmt = nullptr;
};

class SqliteConnection final : public detail::Connection {
public:
    explicit SqliteConnection(const std::filesystem::path& path) {
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
    ~SqliteConnection() override { sqlite3_close(m_db); }
    SqliteConnection(const SqliteConnection&) = delete;
    SqliteConnection& operator=(const SqliteConnection&) = delete;

    Dialect dialect() const override { return Dialect::SQLite; }
    std::unique_ptr<detail::StatementImpl> prepare(std::string_view sql) override {
        return std::make_unique<SqliteStatement>(m_db, sql);
    }
    void exec(std::string_view sql) override {
        const std::string s(sql);
        char* error = nullptr;
        if (sqlite3_exec(m_db, s.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
            const std::string message = error != nullptr ? error : "unknown error";
            sqlite3_free(error);
            throw DatabaseError("SQL failed: " + message);
        }
    }
    void begin() override { exec("BEGIN IMMEDIATE"); }
    void commit() override { exec("COMMIT"); }
    void rollback() noexcept override { sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr); }
    int schemaVersion() override {
        SqliteStatement s(m_db, "PRAGMA user_version");
        return s.step() ? static_cast<int>(s.int64(0)) : 0;
    }
    void setSchemaVersion(int version) override { exec("PRAGMA user_version = " + std::to_string(version)); }

private:
    sqlite3* m_db = nullptr;
};

}  // namespace

namespace detail {
std::unique_ptr<Connection> openSqlite(const std::filesystem::path& path) {
    return std::make_unique<SqliteConnection>(path);
}
}  // namespace detail

Statement::Statement(std::unique_ptr<detail::StatementImpl> impl) : m_impl(std::move(impl)) {}
Statement::~Statement() = default;
Statement::Statement(Statement&&) noexcept = default;
Statement& Statement::operator=(Statement&&) noexcept = default;

Statement& Statement::bind(int index, std::int64_t value) {
    m_impl->bindInt64(index, value);
    return *this;
}

Statement& Statement::bind(int index, double value) {
    m_impl->bindReal(index, value);
    return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
    m_impl->bindText(index, value);
    return *this;
}

Statement& Statement::bind(int index, const Blob& value) {
    m_impl->bindBytes(index, value);
    return *this;
}

Statement& Statement::bindNull(int index, ValueType type) {
    m_impl->bindNull(index, type);
    return *this;
}

bool Statement::step() { return m_impl->step(); }
int Statement::run() { return m_impl->run(); }
bool Statement::isNull(int column) const { return m_impl->isNull(column); }
std::int64_t Statement::int64(int column) const { return m_impl->int64(column); }
double Statement::real(int column) const { return m_impl->real(column); }
std::string Statement::text(int column) const { return m_impl->text(column); }
Blob Statement::blob(int column) const { return m_impl->blob(column); }

std::optional<std::int64_t> Statement::optionalInt64(int column) const {
    return isNull(column) ? std::nullopt : std::optional(int64(column));
}

std::optional<std::string> Statement::optionalText(int column) const {
    return isNull(column) ? std::nullopt : std::optional(text(column));
}

std::int64_t insertedId(Statement& insert) {
    if (!insert.step()) throw DatabaseError("the insert returned no id");
    return insert.int64(0);
}

bool Database::isPostgresUrl(std::string_view location) {
    return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

std::string Database::describe(std::string_view location) {
    std::string out(location);
    if (out.find("://") == std::string::npos) return out;  // a file
    const auto scheme = out.find("://") + 3;
    const auto at = out.find('@', scheme);
    const auto slash = out.find('/', scheme);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
        const auto colon = out.find(':', scheme);
        if (colon != std::string::npos && colon < at) out.replace(colon, at - colon, ":***");
    }
    // A password=... query parameter.
    for (std::size_t p = out.find("password=", scheme); p != std::string::npos; p = out.find("password=", p + 1)) {
        if (out[p - 1] != '?' && out[p - 1] != '&') continue;
        const auto value = p + 9;
        const auto end = out.find('&', value);
        out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
    }
    return out;
}

Database::Database(const std::filesystem::path& location)
    : m_connection(isPostgresUrl(location.native()) ? detail::openPostgres(location.native())
                                                    : detail::openSqlite(location)),
      m_dialect(m_connection->dialect()) {}

Database::~Database() = default;

Statement Database::statement(std::string_view sql) const { return Statement(m_connection->prepare(sql)); }

void Database::exec(std::string_view sql) const {
    const auto l = lock();
    m_connection->exec(sql);
}

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
    m_connection->begin();
    m_depth = 1;
    try {
        fn();
        m_depth = 0;
        m_connection->commit();
    } catch (...) {
        m_depth = 0;
        m_connection->rollback();
        throw;
    }
}

int Database::schemaVersion() const {
    const auto l = lock();
    return m_connection->schemaVersion();
}

void Database::setSchemaVersion(int version) const {
    const auto l = lock();
    m_connection->setSchemaVersion(version);
}

}  // namespace easel::storage
