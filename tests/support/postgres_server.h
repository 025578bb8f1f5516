#pragma once
// A throwaway PostgreSQL server for tests: Debian's own binaries (package postgresql), a cluster made
// by initdb in a temp folder and a postmaster on a free loopback port, owned by this test process (it
// dies with it: PR_SET_PDEATHSIG). As root, both run as the `postgres` user, since PostgreSQL refuses
// to run as root. EASEL_TEST_POSTGRES_URL points the tests at a server of one's own instead.
// Each test takes a fresh schema of its own (freshSchemaUrl), so tests never see each other's rows.

#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "storage/database.h"

namespace easel::testing {

class PostgresServer {
public:
    // The one server of this process, started on first use.
    static PostgresServer& shared() {
        static PostgresServer server;
        return server;
    }

    // postgresql://... of the server's "postgres" database.
    const std::string& url() const { return m_url; }

    // A URL whose connections see only a new, empty schema.
    std::string freshSchemaUrl() {
        static std::atomic<int> counter{0};
        const std::string schema = "t" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
        storage::Database admin(m_url);
        admin.exec("CREATE SCHEMA " + schema);
        return m_url + (m_url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
    }

    ~PostgresServer() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGQUIT);  // immediate shutdown: the data is thrown away
            int status = 0;
            ::waitpid(m_pid, &status, 0);
        }
        if (!m_dir.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(m_dir, ec);
        }
    }
    PostgresServer(const PostgresServer&) = delete;
    PostgresServer& operator=(const PostgresServer&) = delete;

private:
    PostgresServer() {
        if (const char* given = std::getenv("EASEL_TEST_POSTGRES_URL"); given != nullptr && *given != '\0') {
            m_url = given;
            return;
        }
        const auto bin = binDir();
        char pattern[] = "/tmp/easel-pg-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("cannot make a temp folder for PostgreSQL");
        m_dir = pattern;
        if (::geteuid() == 0) {
            const passwd* pw = ::getpwnam("postgres");
            if (pw == nullptr) throw std::runtime_error("running as root, and there is no postgres user to run as");
            m_uid = pw->pw_uid;
            m_gid = pw->pw_gid;
            if (::chown(m_dir.c_str(), *m_uid, m_gid) != 0) throw std::runtime_error("cannot chown " + m_dir.string());
        }
        const auto data = (m_dir / "data").string();
        const auto initLog = (m_dir / "initdb.log").string();
        const pid_t init = spawn({(bin / "initdb").string(), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                  "--no-sync", "--no-instructions"},
                                 initLog, false);
        int status = 0;
        ::waitpid(init, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            throw std::runtime_error("initdb failed; see " + initLog);
        }
        const int port = freeLoopbackPort();
        m_pid =
            spawn({(bin / "postgres").string(), "-D", data, "-p", std::to_string(port), "-c",
                   "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + m_dir.string(), "-c", "fsync=off",
                   "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"},
                  (m_dir / "server.log").string(), true);
        m_url = "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres";
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        for (;;) {
            try {
                storage::Database probe(m_url);
                return;
            } catch (const storage::DatabaseError&) {
                if (std::chrono::steady_clock::now() > deadline) {
                    throw std::runtime_error("PostgreSQL did not start; see " + (m_dir / "server.log").string());
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    }

    static std::filesystem::path binDir() {
        std::vector<std::filesystem::path> found;
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
            if (std::filesystem::exists(entry.path() / "bin" / "initdb")) found.push_back(entry.path() / "bin");
        }
        if (found.empty()) {
            throw std::runtime_error(
                "PostgreSQL's server binaries are missing (/usr/lib/postgresql/*/bin/initdb): install Debian's "
                "postgresql package (packaging/setup-deps.sh does)");
        }
        std::sort(found.begin(), found.end());
        return found.back();
    }

    pid_t spawn(const std::vector<std::string>& argv, const std::string& log, bool dieWithParent) const {
        return spawnChild(argv, log, dieWithParent, m_uid, m_gid);
    }

    std::filesystem::path m_dir;
    std::optional<uid_t> m_uid;
    gid_t m_gid = 0;
    pid_t m_pid = -1;
    std::string m_url;
};

// Which database the domain-layer tests run on: SQLite unless EASEL_TEST_DATABASE=postgresql.
inline bool testsUsePostgres() {
    const char* which = std::getenv("EASEL_TEST_DATABASE");
    return which != nullptr && std::string(which) == "postgresql";
}

}  // namespace easel::testing
