// The PostgreSQL side of Database (libpq). Statements are sent with PQexecParams: parameters out of band
// (bytea in binary, the rest as text with its type), results as text. The SQL is the portable form the
// repositories write; `?` and `?N` placeholders become `$N` here, outside quotes and comments.

#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "storage/database.h"

namespace easel::storage {
namespace {

// Type OIDs of the built-in types (pg_type.h): fixed since PostgreSQL 7.
constexpr Oid kInt8 = 20, kText = 25, kFloat8 = 701, kBytea = 17;

Oid oidOf(ValueType type) {
    switch (type) {
        case ValueType::Integer:
            return kInt8;
        case ValueType::Real:
            return kFloat8;
        case ValueType::Text:
            return kText;
        case ValueType::Bytes:
            return kBytea;
        case ValueType::Unknown:
            break;
    }
    return 0;
}

std::string trimmed(const char* message) {
    std::string s = message != nullptr ? message : "unknown error";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// `?` -> `$1, $2, ...` in order, `?N` -> `$N`; quoted text, quoted names and comments are left alone.
// Returns the SQL and the number of parameters.
std::pair<std::string, int> numberPlaceholders(std::string_view sql) {
    std::string out;
    out.reserve(sql.size() + 16);
    int next = 0, highest = 0;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (c == '\'' || c == '"') {
            const std::size_t end = sql.find(c, i + 1);
            const std::size_t stop = end == std::string_view::npos ? sql.size() : end + 1;
            out.append(sql.substr(i, stop - i));
            i = stop - 1;
        } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
            const std::size_t end = sql.find('\n', i);
            const std::size_t stop = end == std::string_view::npos ? sql.size() : end;
            out.append(sql.substr(i, stop - i));
            i = stop - 1;
        } else if (c == '?') {
            std::size_t j = i + 1;
            int number = 0;
            while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') number = number * 10 + (sql[j++] - '0');
            if (j == i + 1) number = ++next;
            highest = std::max(highest, number);
            out += '$';
            out += std::to_string(number);
            i = j - 1;
        } else {
            out += c;
        }
    }
    return {out, highest};
}

class PostgresStatement final : public detail::StatementImpl {
public:
    PostgresStatement(PGconn* conn, std::string_view sql) : m_conn(conn) {
        auto [text, count] = numberPlaceholders(sql);
        m_sql = std::move(text);
        m_values.resize(static_cast<std::size_t>(count));
        m_null.assign(static_cast<std::size_t>(count), true);
        m_types.assign(static_cast<std::size_t>(count), 0);
        m_formats.assign(static_cast<std::size_t>(count), 0);
    }
    ~PostgresStatement() override { PQclear(m_result); }
    PostgresStatement(const PostgresStatement&) = delete;
    PostgresStatement& operator=(const PostgresStatement&) = delete;

    void bindInt64(int index, std::int64_t value) override { set(index, std::to_string(value), kInt8, 0); }
    void bindReal(int index, double value) override {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.17g", value);
        set(index, buffer, kFloat8, 0);
    }
    void bindText(int index, std::string_view value) override {
        if (value.find('\0') != std::string_view::npos) {
            throw DatabaseError("binding: PostgreSQL text cannot hold a NUL character");
        }
        set(index, std::string(value), kText, 0);
    }
    void bindBytes(int index, const Blob& value) override {
        set(index, std::string(value.begin(), value.end()), kBytea, 1);
    }
    void bindNull(int index, ValueType type) override {
        slot(index);
        const auto i = static_cast<std::size_t>(index - 1);
        m_null[i] = true;
        m_types[i] = oidOf(type);
        m_formats[i] = 0;
    }

    bool step() override {
        if (m_result == nullptr) execute();
        ++m_row;
        return m_row < PQntuples(m_result);
    }
    int run() override {
        if (m_result == nullptr) execute();
        const char* n = PQcmdTuples(m_result);
        return n != nullptr && *n != '\0' ? std::atoi(n) : 0;
    }

    bool isNull(int column) const override { return PQgetisnull(m_result, current(), column) != 0; }
    std::int64_t int64(int column) const override {
        const char* v = PQgetvalue(m_result, current(), column);
        if (v[0] == 't' && v[1] == '\0') return 1;  // a boolean
        if (v[0] == 'f' && v[1] == '\0') return 0;
        return std::strtoll(v, nullptr, 10);
    }
    double real(int column) const override { return std::strtod(PQgetvalue(m_result, current(), column), nullptr); }
    std::string text(int column) const override {
        return std::string(PQgetvalue(m_result, current(), column),
                           static_cast<std::size_t>(PQgetlength(m_result, current(), column)));
    }
    Blob blob(int column) const override {
        if (isNull(column)) return {};
        std::size_t length = 0;
        unsigned char* bytes =
            PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(m_result, current(), column)), &length);
        if (bytes == nullptr) throw DatabaseError("reading bytea: out of memory");
        Blob out(bytes, bytes + length);
        PQfreemem(bytes);
        return out;
    }

private:
    void slot(int index) const {
        if (index < 1 || static_cast<std::size_t>(index) > m_values.size()) {
            throw DatabaseError("binding: parameter " + std::to_string(index) + " is out of range");
        }
    }
    void set(int index, std::string value, Oid type, int format) {
        slot(index);
        const auto i = static_cast<std::size_t>(index - 1);
        m_values[i] = std::move(value);
        m_null[i] = false;
        m_types[i] = type;
        m_formats[i] = format;
    }
    int current() const {
        if (m_result == nullptr || m_row < 0 || m_row >= PQntuples(m_result)) {
            throw DatabaseError("reading a column outside a row");
        }
        return m_row;
    }
    void execute() {
        const std::size_t n = m_values.size();
        std::vector<const char*> values(n);
        std::vector<int> lengths(n);
        for (std::size_t i = 0; i < n; ++i) {
            values[i] = m_null[i] ? nullptr : m_values[i].data();
            lengths[i] = static_cast<int>(m_values[i].size());
        }
        m_result = PQexecParams(m_conn, m_sql.c_str(), static_cast<int>(n), m_types.data(), values.data(),
                                lengths.data(), m_formats.data(), 0);
        const auto status = PQresultStatus(m_result);
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
            const std::string message =
                trimmed(m_result != nullptr ? PQresultErrorMessage(m_result) : PQerrorMessage(m_conn));
            PQclear(m_result);
            m_result = nullptr;
            throw DatabaseError("running SQL: " + message);
        }
        m_row = -1;
    }

    PGconn* m_conn;
    std::string m_sql;
    std::vector<std::string> m_values;
    std::vector<bool> m_null;
    std::vector<Oid> m_types;
    std::vector<int> m_formats;
    PGresult* m_result = nullptr;
    int m_row = -1;
};

class PostgresConnection final : public detail::Connection {
public:
    explicit PostgresConnection(const std::string& url) {
        // Defaults first: what the URL says wins (libpq lets a later keyword override an earlier one).
        const char* keys[] = {"client_encoding", "application_name", "connect_timeout", "dbname", nullptr};
        const char* values[] = {"UTF8", "easel", "10", url.c_str(), nullptr};
        m_conn = PQconnectdbParams(keys, values, 1);
        if (m_conn == nullptr || PQstatus(m_conn) != CONNECTION_OK) {
            // libpq's message names the host and the reason, never the password.
            const std::string message = trimmed(m_conn != nullptr ? PQerrorMessage(m_conn) : "out of memory");
            PQfinish(m_conn);
            throw DatabaseError("cannot connect to PostgreSQL: " + message);
        }
        PQsetNoticeProcessor(
            m_conn, [](void*, const char*) {}, nullptr);
        exec("SET client_min_messages = warning");
    }
    ~PostgresConnection() override { PQfinish(m_conn); }
    PostgresConnection(const PostgresConnection&) = delete;
    PostgresConnection& operator=(const PostgresConnection&) = delete;

    Dialect dialect() const override { return Dialect::PostgreSQL; }
    std::unique_ptr<detail::StatementImpl> prepare(std::string_view sql) override {
        reconnectIfLost();
        return std::make_unique<PostgresStatement>(m_conn, sql);
    }
    void exec(std::string_view sql) override {
        reconnectIfLost();
        PGresult* r = PQexec(m_conn, std::string(sql).c_str());
        const auto status = PQresultStatus(r);
        const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
        const std::string message = ok ? "" : trimmed(r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(m_conn));
        PQclear(r);
        if (!ok) throw DatabaseError("SQL failed: " + message);
    }
    void begin() override {
        exec("BEGIN");
        m_inTransaction = true;
    }
    void commit() override {
        m_inTransaction = false;
        exec("COMMIT");
    }
    void rollback() noexcept override {
        m_inTransaction = false;
        PQclear(PQexec(m_conn, "ROLLBACK"));
    }
    int schemaVersion() override {
        PostgresStatement exists(m_conn, "SELECT to_regclass('easel_schema_version') IS NOT NULL");
        if (!exists.step() || exists.int64(0) == 0) return 0;
        PostgresStatement s(m_conn, "SELECT MAX(version) FROM easel_schema_version");
        return s.step() && !s.isNull(0) ? static_cast<int>(s.int64(0)) : 0;
    }
    void setSchemaVersion(int version) override {
        exec(
            "CREATE TABLE IF NOT EXISTS easel_schema_version (version INTEGER NOT NULL); "
            "DELETE FROM easel_schema_version; INSERT INTO easel_schema_version VALUES (" +
            std::to_string(version) + ")");
    }

private:
    // A server restart or a dropped link leaves the connection bad: outside a transaction the next
    // statement reconnects (inside one, the transaction is lost anyway and its error says so).
    void reconnectIfLost() {
        if (PQstatus(m_conn) == CONNECTION_OK || m_inTransaction) return;
        PQreset(m_conn);
        if (PQstatus(m_conn) == CONNECTION_OK) PQclear(PQexec(m_conn, "SET client_min_messages = warning"));
    }

    PGconn* m_conn = nullptr;
    bool m_inTransaction = false;
};

}  // namespace

namespace detail {
std::unique_ptr<Connection> openPostgres(const std::string& url) { return std::make_unique<PostgresConnection>(url); }
}  // namespace detail

}  // namespace easel::storage
