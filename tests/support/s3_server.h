#pragma once
// A throwaway S3-compatible server for tests: s3rver (npm, pinned in tests/support/s3rver, installed by
// packaging/setup-deps.sh) under the machine's Node.js, on a free loopback port, storing in a temp
// folder, owned by this test process (it dies with it). One bucket, "easel-test"; each test takes a
// prefix of its own (freshPrefix), so tests never see each other's objects. s3rver's key pair is
// S3RVER / S3RVER. s3rver does not check SigV4 signatures, so the endpoint the tests get is a proxy in
// front of it that does, as S3 does (tests/support/s3rver/sigv4-check.js): a request whose signature,
// payload hash or pre-signed expiry is wrong is refused with S3's 403/400 XML error.

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include "child_process.h"
#include "storage/s3_blob_store.h"

namespace easel::testing {

class S3Server {
public:
    static constexpr const char* kBucket = "easel-test";
    static constexpr const char* kAccessKey = "S3RVER";
    static constexpr const char* kSecretKey = "S3RVER";

    static S3Server& shared() {
        static S3Server server;
        return server;
    }

    // http://127.0.0.1:PORT
    const std::string& endpoint() const { return m_endpoint; }
    std::string freshPrefix() {
        static std::atomic<int> counter{0};
        return "t" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "/";
    }
    // Settings for a blob store in this server's bucket under a new prefix.
    storage::S3Settings freshSettings() {
        storage::S3Settings s;
        s.endpoint = m_endpoint;
        s.bucket = kBucket;
        s.prefix = freshPrefix();
        s.accessKey = kAccessKey;
        s.secretKey = kSecretKey;
        s.timeout = std::chrono::seconds(20);
        return s;
    }
    // The same as an --blob-store URL (credentials go in the environment: see exportCredentials).
    std::string freshUrl(const std::string& extra = {}) {
        return "s3://" + std::string(kBucket) + "/" + freshPrefix() + "?endpoint=" + m_endpoint + extra;
    }
    static void exportCredentials() {
        ::setenv("AWS_ACCESS_KEY_ID", kAccessKey, 1);
        ::setenv("AWS_SECRET_ACCESS_KEY", kSecretKey, 1);
    }
    // Where s3rver keeps the objects (for tests that look behind the API's back).
    const std::filesystem::path& dataDir() const { return m_data; }

    ~S3Server() {
        for (const pid_t pid : {m_checkPid, m_pid}) {
            if (pid <= 0) continue;
            ::kill(pid, SIGKILL);
            int status = 0;
            ::waitpid(pid, &status, 0);
        }
        std::error_code ec;
        if (!m_dir.empty()) std::filesystem::remove_all(m_dir, ec);
    }
    S3Server(const S3Server&) = delete;
    S3Server& operator=(const S3Server&) = delete;

private:
    S3Server() {
        const std::filesystem::path script =
            std::filesystem::path(EASEL_SOURCE_DIR) / "tests/support/s3rver/node_modules/s3rver/bin/s3rver.js";
        if (!std::filesystem::exists(script)) {
            throw std::runtime_error("s3rver is not installed (" + script.string() +
                                     "): run packaging/setup-deps.sh, which runs npm ci in tests/support/s3rver");
        }
        const auto node = findNode();
        char pattern[] = "/tmp/easel-s3-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("cannot make a temp folder for s3rver");
        m_dir = pattern;
        m_data = m_dir / "data";
        std::filesystem::create_directories(m_data);
        const int port = freeLoopbackPort();
        const auto log = (m_dir / "s3rver.log").string();
        m_pid = spawnChild({node, script.string(), "-d", m_data.string(), "-a", "127.0.0.1", "-p", std::to_string(port),
                            "--no-vhost-buckets", "--configure-bucket", kBucket},
                           log);
        waitForPort(m_pid, port, "s3rver", log);
        const int checked = freeLoopbackPort();
        const auto checkLog = (m_dir / "sigv4-check.log").string();
        const auto checker = std::filesystem::path(EASEL_SOURCE_DIR) / "tests/support/s3rver/sigv4-check.js";
        m_checkPid = spawnChild({node, checker.string(), "--port", std::to_string(checked), "--upstream",
                                 std::to_string(port), "--key", std::string(kAccessKey) + ":" + kSecretKey},
                                checkLog);
        waitForPort(m_checkPid, checked, "the SigV4 check", checkLog);
        m_endpoint = "http://127.0.0.1:" + std::to_string(checked);
    }

    // Waits until `pid` listens on `port`; throws when it exits or takes a minute.
    static void waitForPort(pid_t& pid, int port, const std::string& what, const std::string& log) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!loopbackPortAnswers(port)) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                throw std::runtime_error(what + " exited at start; see " + log);
            }
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error(what + " did not start; see " + log);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    static std::string findNode() {
        for (const char* candidate : {"/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"}) {
            if (::access(candidate, X_OK) == 0) return candidate;
        }
        throw std::runtime_error("Node.js is missing: install Debian's nodejs package (packaging/setup-deps.sh does)");
    }

    std::filesystem::path m_dir;
    std::filesystem::path m_data;
    pid_t m_pid = -1;
    pid_t m_checkPid = -1;
    std::string m_endpoint;
};

// Where the HTTP backend tests keep blobs: files unless EASEL_TEST_BLOB_STORE=s3.
inline bool testsUseS3() {
    const char* which = std::getenv("EASEL_TEST_BLOB_STORE");
    return which != nullptr && std::string(which) == "s3";
}

}  // namespace easel::testing
