// Outbound HTTP against a peer that accepts and never answers: every exchange ends by its deadline
// (or at once when cancelled), and the pool bounds how much of the server such peers can hold. And the
// request itself: its Host header names the port, as HTTP wants (S3 pre-signed links sign it).

#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "eventually.h"
#include "net/http_client.h"
#include "net/outbound_pool.h"
#include "tarpit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <thread>

namespace easel::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Accepts one connection on 127.0.0.1, keeps the request's head and answers 204.
class OneShotPeer {
public:
    OneShotPeer() {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (m_fd < 0 || ::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(m_fd, 1) != 0 ||
            ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            throw std::runtime_error("cannot listen on 127.0.0.1");
        }
        port = ntohs(addr.sin_port);
        m_thread = std::thread([this] {
            const int c = ::accept(m_fd, nullptr, nullptr);
            if (c < 0) return;
            char buf[4096];
            while (head.find("\r\n\r\n") == std::string::npos) {
                const auto n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                head.append(buf, static_cast<std::size_t>(n));
            }
            const std::string answer = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
            [[maybe_unused]] const auto sent = ::write(c, answer.data(), answer.size());
            ::close(c);
        });
    }
    ~OneShotPeer() {
        ::shutdown(m_fd, SHUT_RDWR);
        if (m_thread.joinable()) m_thread.join();
        ::close(m_fd);
    }
    // Valid once the exchange is over.
    std::string head;
    std::uint16_t port = 0;

private:
    int m_fd = -1;
    std::thread m_thread;
};

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

OutboundRequest stalledGet(const testing::Tarpit& tarpit, std::chrono::milliseconds timeout) {
    OutboundRequest r;
    r.url = tarpit.url("/image.png");
    r.timeout = timeout;
    return r;
}

TEST(OutboundFetch, ASilentPeerFailsTheFetchAtItsDeadline) {
    testing::Tarpit tarpit;
    const auto t0 = Clock::now();
    try {
        httpFetch(stalledGet(tarpit, 600ms), UrlPolicy{true});
        FAIL() << "a peer that never answers gave a response";
    } catch (const OutboundError& e) {
        EXPECT_EQ(e.kind(), OutboundError::Kind::TimedOut) << e.what();
        EXPECT_NE(std::string(e.what()).find("did not answer in time"), std::string::npos) << e.what();
    }
    const double took = secondsSince(t0);
    EXPECT_GE(took, 0.55);
    EXPECT_LT(took, 2.0);
}

TEST(OutboundFetch, TheHostHeaderNamesThePortUnlessItIsTheDefault) {
    std::string head;
    std::uint16_t port = 0;
    {
        OneShotPeer peer;
        port = peer.port;
        OutboundRequest r;
        r.url = "http://127.0.0.1:" + std::to_string(port) + "/hook?x=1";
        EXPECT_EQ(httpFetch(r, UrlPolicy{true}).status, 204);
        head = peer.head;
    }
    EXPECT_EQ(head.rfind("GET /hook?x=1 HTTP/1.1\r\n", 0), 0u) << head;
    std::string lower;
    for (const char c : head) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto at = lower.find("\r\nhost: ");
    ASSERT_NE(at, std::string::npos) << head;
    const auto value = head.substr(at + 8, head.find("\r\n", at + 2) - at - 8);
    EXPECT_EQ(value, "127.0.0.1:" + std::to_string(port)) << head;
}

TEST(OutboundFetch, ADownloadThatGoesSilentFailsAfterItsIdleTimeout) {
    testing::Tarpit tarpit;
    auto r = stalledGet(tarpit, 60s);
    r.idleTimeout = 400ms;
    const auto t0 = Clock::now();
    EXPECT_THROW(httpFetch(r, UrlPolicy{true}), OutboundError);
    EXPECT_LT(secondsSince(t0), 2.0);  // not the 60 s of the whole exchange
}

TEST(OutboundFetch, ACancelStopsTheExchangeAtOnce) {
    testing::Tarpit tarpit;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    auto r = stalledGet(tarpit, 60s);
    r.cancelled = cancel;
    auto fetch = std::async(std::launch::async, [&] { return httpFetch(r, UrlPolicy{true}); });
    ASSERT_EQ(fetch.wait_for(300ms), std::future_status::timeout);
    const auto t0 = Clock::now();
    cancel->store(true);
    ASSERT_EQ(fetch.wait_for(2s), std::future_status::ready);
    EXPECT_LT(secondsSince(t0), 1.0);
    try {
        fetch.get();
        FAIL() << "a cancelled fetch returned";
    } catch (const OutboundError& e) {
        EXPECT_EQ(e.kind(), OutboundError::Kind::Cancelled) << e.what();
    }
}

TEST(OutboundFetch, PrivateAddressesAreRefusedUnlessAllowed) {
    testing::Tarpit tarpit;
    const auto t0 = Clock::now();
    try {
        httpFetch(stalledGet(tarpit, 5s), UrlPolicy{false});
        FAIL() << "a loopback address was fetched";
    } catch (const OutboundError& e) {
        EXPECT_NE(std::string(e.what()).find("private or loopback"), std::string::npos) << e.what();
    }
    EXPECT_LT(secondsSince(t0), 1.0);
    EXPECT_EQ(tarpit.accepted(), 0);  // refused before connecting
}

TEST(OutboundPool, AFullPoolRefusesAtOnceAndStopEndsEverythingWithinASecond) {
    testing::Tarpit tarpit;
    OutboundPool pool({/*threads=*/2, /*maxQueued=*/1});
    std::vector<std::future<OutboundResponse>> held;
    // Two on the wire, then one waiting (one at a time: a thread must have taken the previous one).
    for (const auto& [running, queued] : {std::pair{1, 0u}, {2, 0u}, {2, 1u}}) {
        held.push_back(
            std::async(std::launch::async, [&] { return pool.fetch(stalledGet(tarpit, 60s), UrlPolicy{true}); }));
        ASSERT_TRUE(testing::eventually([&] { return pool.running() == running && pool.queued() == queued; }))
            << pool.running() << " running, " << pool.queued() << " queued";
    }
    const auto t0 = Clock::now();
    try {
        pool.fetch(stalledGet(tarpit, 60s), UrlPolicy{true});
        FAIL() << "a full pool took more work";
    } catch (const OutboundError& e) {
        EXPECT_EQ(e.kind(), OutboundError::Kind::Busy) << e.what();
    }
    EXPECT_LT(secondsSince(t0), 0.5);

    const auto stopAt = Clock::now();
    pool.stop();
    EXPECT_LT(secondsSince(stopAt), 1.5);
    for (auto& f : held) {
        ASSERT_EQ(f.wait_for(1s), std::future_status::ready);
        try {
            f.get();
            FAIL() << "a fetch of a silent peer returned";
        } catch (const OutboundError& e) {
            EXPECT_EQ(e.kind(), OutboundError::Kind::Cancelled) << e.what();
        }
    }
    EXPECT_FALSE(pool.post(stalledGet(tarpit, 1s), UrlPolicy{true}, [](auto, auto) {}));
}

TEST(OutboundPool, TimeSpentQueuedCountsAgainstTheDeadline) {
    testing::Tarpit tarpit;
    OutboundPool pool({/*threads=*/1, /*maxQueued=*/1});
    auto first = std::async(std::launch::async, [&] { return pool.fetch(stalledGet(tarpit, 800ms), UrlPolicy{true}); });
    ASSERT_TRUE(testing::eventually([&] { return pool.running() == 1; }));
    const auto t0 = Clock::now();
    try {
        pool.fetch(stalledGet(tarpit, 500ms), UrlPolicy{true});
        FAIL() << "a fetch of a silent peer returned";
    } catch (const OutboundError& e) {
        EXPECT_EQ(e.kind(), OutboundError::Kind::Busy) << e.what();  // its time ran out waiting for a thread
    }
    EXPECT_LT(secondsSince(t0), 1.2);  // its own 0.5 s were spent waiting; it is not fetched for another 0.5 s
    EXPECT_THROW(first.get(), OutboundError);
}

}  // namespace
}  // namespace easel::net
