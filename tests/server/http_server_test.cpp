#include "server/http_server.h"

#include <gtest/gtest.h>

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
        m_server = std::make_unique<HttpServer>(options, std::move(router));
        m_server->start();
    }
    std::string roundTrip(const std::string& bytes) {
        RawConnection c(m_server->port());
        c.send(bytes);
        return c.readResponse();
    }
    std::unique_ptr<HttpServer> m_server;
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
