#include "server/http_server.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "raw_http.h"
#include "server/health_controller.h"

using easel::server::HttpServer;
using easel::server::HttpServerOptions;
using easel::server::Request;
using easel::server::Response;
using easel::server::Router;
using easel::testing::RawConnection;
using namespace std::chrono_literals;

namespace {

class HttpServerTest : public ::testing::Test {
protected:
    void startServer(HttpServerOptions options = {}) {
        options.port = 0;
        Router router;
        easel::server::registerHealthRoutes(router, {"test", "cpu", ""});
        router.add(
            "POST", "/echo/{name}",
            [](const Request& r) {
                return Response::json(200, {{"name", r.pathParams.at("name")},
                                            {"bytes", r.body.size()},
                                            {"q", r.query.count("q") ? r.query.at("q") : ""}});
            },
            "test echo", 1024);
        router.add("GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("bug"); });
        router.add("GET", "/whoami", [](const Request& r) { return Response::json(200, {{"ip", r.remoteAddress}}); });
        router.add(
            "POST", "/big",
            [](const Request& r) {
                return Response::json(200, {{"bytes", r.body.size()}});
            },
            "large bodies", 8u << 20);
        // Holds a worker until release() (a handler waiting for a job, say).
        router.add("GET", "/block", [this](const Request&) {
            std::unique_lock lock(m_blockMutex);
            ++m_blocked;
            m_blockChanged.notify_all();
            m_blockChanged.wait(lock, [this] { return m_released; });
            return Response::json(200, {{"status", "done"}});
        });
        router.setCredentialCheck([](const std::string& key) { return key == "good-key"; });
        m_server = std::make_unique<HttpServer>(options, std::move(router));
        m_server->start();
    }
    std::string roundTrip(const std::string& bytes) {
        RawConnection c(m_server->port());
        c.send(bytes);
        return c.readResponse();
    }
    void release() {
        std::lock_guard lock(m_blockMutex);
        m_released = true;
        m_blockChanged.notify_all();
    }
    bool waitBlocked(int n) {
        std::unique_lock lock(m_blockMutex);
        return m_blockChanged.wait_for(lock, 5s, [&] { return m_blocked >= n; });
    }
    void TearDown() override { release(); }

    std::mutex m_blockMutex;
    std::condition_variable m_blockChanged;
    int m_blocked = 0;
    bool m_released = false;
    std::unique_ptr<HttpServer> m_server;  // last: stopped before what its handlers use goes
};

nlohmann::json jsonBody(const std::string& response) { return nlohmann::json::parse(RawConnection::bodyOf(response)); }

}  // namespace

TEST_F(HttpServerTest, HealthAnswersOk) {
    startServer();
    const auto r = roundTrip("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(RawConnection::statusOf(r), 200) << r;
    const auto body = jsonBody(r);
    EXPECT_EQ(body["status"], "ok");
    EXPECT_EQ(body["version"], "test");
    EXPECT_NE(r.find("Content-Type: application/json"), std::string::npos);
}

TEST_F(HttpServerTest, UnknownPathAndWrongMethodGiveJsonErrors) {
    startServer();
    auto r = roundTrip("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(RawConnection::statusOf(r), 404);
    EXPECT_EQ(jsonBody(r)["status"], "error");
    EXPECT_EQ(jsonBody(r)["message"], jsonBody(r)["messege"]);
    r = roundTrip("DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(RawConnection::statusOf(r), 405);
    EXPECT_NE(r.find("Allow: GET, HEAD\r\n"), std::string::npos) << r;  // RFC 9110: what the path takes
}

TEST_F(HttpServerTest, PathParamsQueryAndBody) {
    startServer();
    const auto r = roundTrip("POST /echo/ab%20c?q=x+y HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    ASSERT_EQ(RawConnection::statusOf(r), 200) << r;
    const auto body = jsonBody(r);
    EXPECT_EQ(body["name"], "ab c");
    EXPECT_EQ(body["q"], "x y");
    EXPECT_EQ(body["bytes"], 5);
}

TEST_F(HttpServerTest, EveryRequestGetsAnIdAndOneJsonLogLineWithoutItsQuery) {
    std::mutex mutex;
    std::vector<std::string> lines;
    HttpServerOptions o;
    o.log = [&](const std::string& line) {
        std::lock_guard lock(mutex);
        lines.push_back(line);
    };
    startServer(o);
    auto r = roundTrip(
        "POST /echo/a?key=secret HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-42.a_b\r\n"
        "Content-Length: 5\r\n\r\nhello");
    ASSERT_EQ(RawConnection::statusOf(r), 200) << r;
    EXPECT_NE(r.find("X-Request-Id: trace-42.a_b\r\n"), std::string::npos) << r;
    // An id that is not a plain token (here with a space and a quote) is replaced by a fresh one.
    r = roundTrip("GET /boom HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id\"\r\n\r\n");
    ASSERT_EQ(RawConnection::statusOf(r), 500) << r;
    const auto idAt = r.find("X-Request-Id: ");
    ASSERT_NE(idAt, std::string::npos) << r;
    const auto fresh = r.substr(idAt + 14, r.find("\r\n", idAt) - idAt - 14);
    EXPECT_EQ(fresh.size(), 16u) << fresh;

    std::lock_guard lock(mutex);
    ASSERT_EQ(lines.size(), 3u);  // the echo; the failure and its answer
    const auto echo = nlohmann::json::parse(lines[0]);
    EXPECT_EQ(echo["request_id"], "trace-42.a_b");
    EXPECT_EQ(echo["method"], "POST");
    EXPECT_EQ(echo["path"], "/echo/a");  // the query (which may hold a key) is never logged
    EXPECT_EQ(echo["status"], 200);
    EXPECT_EQ(echo["level"], "info");
    EXPECT_EQ(echo["remote"], "127.0.0.1");
    EXPECT_GE(echo["duration_ms"].get<double>(), 0.0);
    EXPECT_EQ(lines[0].find("secret"), std::string::npos);
    const auto failure = nlohmann::json::parse(lines[1]);
    EXPECT_EQ(failure["event"], "handler_failed");
    EXPECT_EQ(failure["request_id"], fresh);
    EXPECT_EQ(failure["error"], "bug");
    const auto answered = nlohmann::json::parse(lines[2]);
    EXPECT_EQ(answered["status"], 500);
    EXPECT_EQ(answered["level"], "error");
    EXPECT_EQ(answered["request_id"], fresh);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    startServer();
    RawConnection c(m_server->port());
    for (int i = 0; i < 3; ++i) {
        c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_EQ(RawConnection::statusOf(c.readResponse()), 200);
    }
}

TEST_F(HttpServerTest, GarbageRequestLineIs400) {
    startServer();
    const auto r = roundTrip("\x01\x02 garbage \xff\r\n\r\n");
    EXPECT_EQ(RawConnection::statusOf(r), 400) << r;
    EXPECT_EQ(jsonBody(r)["status"], "error");
}

TEST_F(HttpServerTest, ConflictingContentLengthAndTransferEncodingIs400) {
    startServer();
    const auto r = roundTrip(
        "POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        "4\r\nabcd\r\n0\r\n\r\n");
    EXPECT_EQ(RawConnection::statusOf(r), 400) << r;
    const auto r2 =
        roundTrip("POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde");
    EXPECT_EQ(RawConnection::statusOf(r2), 400) << r2;
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
    startServer();
    const auto r = roundTrip("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    EXPECT_EQ(RawConnection::statusOf(r), 431) << r.substr(0, 200);
}

TEST_F(HttpServerTest, BodyOverTheRouteLimitIs413WithoutReadingIt) {
    startServer();
    // Announce 100 MB and send none of it: the answer must come from the header alone.
    RawConnection c(m_server->port());
    c.send("POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n");
    const auto r = c.readResponse();
    EXPECT_EQ(RawConnection::statusOf(r), 413) << r;
    // A chunked body that grows past the limit is cut off too.
    RawConnection c2(m_server->port());
    c2.send("POST /echo/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + std::string(2048, 'z') +
            "\r\n");
    EXPECT_EQ(RawConnection::statusOf(c2.readResponse()), 413);
}

TEST_F(HttpServerTest, SlowHeaderClientIsDroppedWhileOthersAreServed) {
    HttpServerOptions options;
    options.headerTimeout = 300ms;
    startServer(options);
    RawConnection slow(m_server->port());
    slow.send("GET /health HTTP/1.1\r\nHo");
    const auto start = std::chrono::steady_clock::now();
    // Meanwhile a normal client is served at once.
    EXPECT_EQ(RawConnection::statusOf(roundTrip("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
    const auto rest = slow.readAll(3000ms);
    EXPECT_TRUE(slow.closedByPeer());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2000ms);
    EXPECT_EQ(rest.find("200 OK"), std::string::npos);
}

TEST_F(HttpServerTest, HandlerExceptionIs500AndServerLivesOn) {
    startServer();
    EXPECT_EQ(RawConnection::statusOf(roundTrip("GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")), 500);
    EXPECT_EQ(RawConnection::statusOf(roundTrip("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
}

TEST_F(HttpServerTest, ConnectionsPerIpAreCapped) {
    HttpServerOptions options;
    options.maxConnectionsPerIp = 2;
    startServer(options);
    RawConnection a(m_server->port());
    RawConnection b(m_server->port());
    a.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(RawConnection::statusOf(a.readResponse()), 200);
    RawConnection c(m_server->port());
    c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    c.readAll(1000ms);
    EXPECT_TRUE(c.closedByPeer());
}

TEST_F(HttpServerTest, StopEndsRunUntilSignalled) {
    startServer();
    std::thread waiter([&] { m_server->runUntilSignalled(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto t0 = std::chrono::steady_clock::now();
    m_server->stop();
    waiter.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST_F(HttpServerTest, ErrorToAClientStillSendingIsDeliveredNotReset) {
    startServer();
    RawConnection c(m_server->port());
    // Announce a body over the limit and keep sending it: the 413 must still arrive intact.
    c.send("POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000000\r\n\r\n");
    const std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 8; ++i) c.send(chunk);
    const auto response = c.readAll(std::chrono::milliseconds(4000));
    EXPECT_EQ(response.rfind("HTTP/1.1 413", 0), 0u) << response.substr(0, 80);
}

TEST_F(HttpServerTest, PastTheConnectionCapOnlyTheHealthProbeIsAnswered) {
    HttpServerOptions options;
    options.maxConnections = 3;
    startServer(options);
    std::vector<std::unique_ptr<RawConnection>> idle;
    for (int i = 0; i < 3; ++i) {
        idle.push_back(std::make_unique<RawConnection>(m_server->port()));
        idle.back()->send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");  // keep-alive: stays open
        ASSERT_EQ(RawConnection::statusOf(idle.back()->readResponse()), 200);
    }
    {
        // The fourth connection is over the cap: the probe is answered, and then the connection closes.
        RawConnection probe(m_server->port());
        probe.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        const auto health = probe.readAll(2000ms);
        EXPECT_EQ(RawConnection::statusOf(health), 200) << health;
        EXPECT_TRUE(probe.closedByPeer());
        RawConnection other(m_server->port());
        other.send("GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n");
        const auto refused = other.readResponse();
        EXPECT_EQ(RawConnection::statusOf(refused), 503) << refused;
        EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
        EXPECT_NE(jsonBody(refused)["message"].get<std::string>().find("limit of 3 connections"), std::string::npos);
    }
    // Once one closes, a normal request is served again.
    idle.pop_back();
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(RawConnection::statusOf(roundTrip("GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
}

TEST_F(HttpServerTest, AFullWorkerQueueAnswers503AndHealthStillAnswersAtOnce) {
    HttpServerOptions options;
    options.workerThreads = 1;
    options.maxQueuedRequests = 1;
    startServer(options);
    RawConnection running(m_server->port());
    running.send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(waitBlocked(1));  // the only worker is busy
    RawConnection queued(m_server->port());
    queued.send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    std::this_thread::sleep_for(100ms);
    const auto refused = roundTrip("GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(RawConnection::statusOf(refused), 503) << refused;
    EXPECT_NE(refused.find("Retry-After"), std::string::npos);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(RawConnection::statusOf(roundTrip("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
    release();
    EXPECT_EQ(RawConnection::statusOf(running.readResponse()), 200);
    EXPECT_EQ(RawConnection::statusOf(queued.readResponse()), 200);
    EXPECT_EQ(RawConnection::statusOf(roundTrip("GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
}

TEST_F(HttpServerTest, ALargeBodyWithABadHeaderKeyIsRefusedBeforeItIsRead) {
    startServer();
    RawConnection c(m_server->port());
    // Announce 4 MB and send none of it: the 401 comes from the header alone.
    c.send("POST /big HTTP/1.1\r\nHost: x\r\nX-API-Key: stolen\r\nContent-Length: 4194304\r\n\r\n");
    const auto r = c.readResponse();
    EXPECT_EQ(RawConnection::statusOf(r), 401) << r;
    EXPECT_NE(jsonBody(r)["message"].get<std::string>().find("invalid API key"), std::string::npos);
    // The same body with a good key (either header) is read and handled.
    const std::string body(2u << 20, 'b');
    for (const std::string header : {"X-API-Key: good-key", "Authorization: Bearer good-key"}) {
        const auto ok = roundTrip("POST /big HTTP/1.1\r\nHost: x\r\n" + header +
                                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
        ASSERT_EQ(RawConnection::statusOf(ok), 200) << header;
        EXPECT_EQ(jsonBody(ok)["bytes"], body.size());
    }
    // A small body is not gated: the route sees it whatever the header says.
    EXPECT_EQ(RawConnection::statusOf(
                  roundTrip("POST /big HTTP/1.1\r\nHost: x\r\nX-API-Key: stolen\r\nContent-Length: 2\r\n\r\nhi")),
              200);
}

TEST_F(HttpServerTest, OnlyAFewLargeBodiesWithoutAHeaderKeyAreReadAtOnce) {
    HttpServerOptions options;
    options.anonymousLargeBodies = 1;
    startServer(options);
    const std::string size = std::to_string(2u << 20);
    RawConnection slow(m_server->port());  // holds the one slot: sends half its body and stalls
    slow.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: " + size + "\r\n\r\n" + std::string(1u << 20, 'a'));
    std::this_thread::sleep_for(100ms);
    RawConnection second(m_server->port());
    second.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: " + size + "\r\n\r\n");
    const auto refused = second.readResponse();
    EXPECT_EQ(RawConnection::statusOf(refused), 503) << refused;
    EXPECT_NE(refused.find("Retry-After: 2"), std::string::npos);
    EXPECT_NE(jsonBody(refused)["message"].get<std::string>().find("X-API-Key"), std::string::npos);
    // A client with a key in the header does not wait for the slot.
    const std::string body(2u << 20, 'k');
    EXPECT_EQ(RawConnection::statusOf(roundTrip("POST /big HTTP/1.1\r\nHost: x\r\nX-API-Key: good-key\r\n"
                                                "Content-Length: " +
                                                size + "\r\n\r\n" + body)),
              200);
    // The slow one finishes: its slot is free again for the next client without a key.
    slow.send(std::string(1u << 20, 'a'));
    EXPECT_EQ(RawConnection::statusOf(slow.readResponse()), 200);
    EXPECT_EQ(RawConnection::statusOf(
                  roundTrip("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: " + size + "\r\n\r\n" + body)),
              200);
}

TEST_F(HttpServerTest, XForwardedForIsBelievedOnlyFromATrustedProxy) {
    const auto whoami = [&](const std::string& headers) {
        return jsonBody(roundTrip("GET /whoami HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n"))["ip"].get<std::string>();
    };
    startServer();
    EXPECT_EQ(whoami("X-Forwarded-For: 203.0.113.7\r\n"), "127.0.0.1");  // anyone can write the header
    m_server.reset();
    HttpServerOptions options;
    options.trustedProxies = easel::server::parseCidrList("127.0.0.0/8, 10.0.0.0/8");
    startServer(options);
    EXPECT_EQ(whoami("X-Forwarded-For: 203.0.113.7\r\n"), "203.0.113.7");
    // Right to left through the trusted hops; what the client itself wrote further left is ignored.
    EXPECT_EQ(whoami("X-Forwarded-For: 1.1.1.1, 203.0.113.7, 10.1.2.3\r\n"), "203.0.113.7");
    EXPECT_EQ(whoami("X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2001:db8::5, 10.0.0.9\r\n"), "2001:db8::5");
    EXPECT_EQ(whoami(""), "127.0.0.1");
    EXPECT_EQ(whoami("X-Forwarded-For: not-an-address\r\n"), "127.0.0.1");
}
