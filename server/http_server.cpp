#include "server/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/random_token.h"
#include "server/api_support.h"

namespace easel::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percentDecode(std::string_view s, bool plusIsSpace) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
            i += 2;
        } else if (plusIsSpace && s[i] == '+') {
            out.push_back(' ');
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

void splitTarget(std::string_view target, Request& req) {
    const auto q = target.find('?');
    req.path = percentDecode(target.substr(0, q), false);
    if (q == std::string_view::npos) return;
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (!pair.empty()) {
            req.query[percentDecode(pair.substr(0, eq), true)] =
                eq == std::string_view::npos ? std::string() : percentDecode(pair.substr(eq + 1), true);
        }
        if (amp == std::string_view::npos) break;
        rest = rest.substr(amp + 1);
    }
}

// Connections past HttpServerOptions::maxConnections that are still read, to answer the readiness
// probe and tell the rest to come back; beyond these, new connections are closed unanswered.
constexpr std::size_t kOverflowConnections = 64;

struct Shared {
    HttpServerOptions options;
    Router router;
    net::thread_pool workers;
    std::mutex connectionsMutex;
    std::map<std::string, std::size_t> connectionsPerIp;  // by addressGroup(); guarded by connectionsMutex
    std::size_t openConnections = 0;                      // guarded by connectionsMutex
    std::atomic<std::size_t> queued{0};                   // requests posted to the workers, not yet started
    std::atomic<std::size_t> anonymousLarge{0};           // large bodies being read without a header key

    Shared(HttpServerOptions o, Router r)
        : options(std::move(o)), router(std::move(r)), workers(static_cast<std::size_t>(options.workerThreads)) {}

    bool trustedProxy(const std::string& ip) const {
        return std::any_of(options.trustedProxies.begin(), options.trustedProxies.end(),
                           [&](const CidrBlock& b) { return b.contains(ip); });
    }
};

Response busy(std::string message, int retryAfterSeconds) {
    auto r = Response::error(503, message);
    r.headers["Retry-After"] = std::to_string(retryAfterSeconds);
    return r;
}

// The client's X-Request-Id if it is a plain token, else a fresh one.
std::string requestIdFor(const std::string& given) {
    const bool plain = !given.empty() && given.size() <= 64 &&
                       given.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
                           std::string::npos;
    return plain ? given : randomToken().substr(0, 16);
}

std::string utcNow() {
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

// `match` is the router's answer for the request's method and path, found once when its header arrived.
Response dispatchToHandler(Router::Match match, Request& req, const HttpServerOptions& options) {
    if (match.route == nullptr) {
        if (match.pathKnown) {
            auto r = Response::error(405, "method " + req.method + " is not allowed on " + req.path);
            std::string allow;
            for (const auto& m : match.allowed) allow += (allow.empty() ? "" : ", ") + m;
            r.headers["Allow"] = allow;  // RFC 9110 15.5.6: a 405 names the methods the path takes
            return r;
        }
        return Response::error(404, "no such endpoint: " + req.path);
    }
    req.pathParams = std::move(match.params);
    try {
        return match.route->handler(req);
    } catch (const ServiceError& e) {
        return errorResponse(e);
    } catch (const std::exception& e) {
        // A handler bug must not take the server down; the message names no secret by construction
        // (handlers throw typed errors for user-facing cases before this point).
        const nlohmann::json line{
            {"time", utcNow()},     {"level", "error"}, {"event", "handler_failed"}, {"request_id", req.requestId},
            {"method", req.method}, {"path", req.path}, {"error", e.what()}};
        if (options.log) {
            options.log(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        } else {
            std::cerr << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        }
        return Response::error(500, "internal server error");
    }
}

class Session : public std::enable_shared_from_this<Session> {
public:
    // `group` is the per-address counter this connection holds (empty: none, a trusted proxy);
    // `overflow`: admitted past the connection cap, so only inline routes are served.
    Session(tcp::socket socket, Shared& shared, std::string ip, std::string group, bool overflow)
        : m_stream(std::move(socket)),
          m_shared(shared),
          m_ip(std::move(ip)),
          m_group(std::move(group)),
          m_overflow(overflow) {}

    ~Session() {
        releaseLargeBodySlot();
        std::lock_guard lock(m_shared.connectionsMutex);
        --m_shared.openConnections;
        if (m_group.empty()) return;
        auto it = m_shared.connectionsPerIp.find(m_group);
        if (it != m_shared.connectionsPerIp.end() && --it->second == 0) m_shared.connectionsPerIp.erase(it);
    }

    void start() {
        net::dispatch(m_stream.get_executor(), beast::bind_front_handler(&Session::readHeader, shared_from_this()));
    }

private:
    void readHeader() {
        m_parser.emplace();
        m_parser->header_limit(static_cast<std::uint32_t>(m_shared.options.headerLimit));
        // Beast checks Content-Length against this limit while parsing the header, before the route is
        // known: so here the largest any route takes, and onHeader sets the route's own before the body.
        m_parser->body_limit(m_shared.router.largestBodyLimit());
        // An overflow connection gets one short chance: it is there to answer the readiness probe.
        m_stream.expires_after(
            m_overflow ? std::min<std::chrono::milliseconds>(m_shared.options.headerTimeout, std::chrono::seconds(2))
                       : m_shared.options.headerTimeout);
        http::async_read_header(m_stream, m_buffer, *m_parser,
                                beast::bind_front_handler(&Session::onHeader, shared_from_this()));
    }

    static bool isDisconnect(const beast::error_code& ec) {
        return ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
               ec == net::error::connection_reset || ec == net::error::operation_aborted ||
               ec == http::error::partial_message;
    }

    void failWith(const beast::error_code& ec) {
        if (isDisconnect(ec)) return close();
        if (ec == http::error::header_limit) return sendError(431, "request header too large", false);
        if (ec == http::error::body_limit) return sendError(413, "request body too large", false);
        return sendError(400, "malformed HTTP request: " + ec.message(), false);
    }

    void onHeader(beast::error_code ec, std::size_t) {
        if (ec) return failWith(ec);
        auto& req = m_parser->get();
        const std::string target(req.target());
        const auto q = target.find('?');
        m_match = m_shared.router.match(std::string(req.method_string()), percentDecode(target.substr(0, q), false));
        if (m_overflow && !runsInline()) {
            return send(busy("the server is at its limit of " + std::to_string(m_shared.options.maxConnections) +
                                 " connections; retry shortly",
                             1),
                        false);
        }
        const std::size_t limit = m_match.route != nullptr ? m_match.route->bodyLimit : Router::kDefaultBodyLimit;
        const auto length = m_parser->content_length();
        if (length && *length > limit) {
            return sendError(413,
                             "request body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                                 std::to_string(limit) + " bytes for this endpoint",
                             false);
        }
        m_parser->body_limit(limit);
        const bool large = limit > Router::kUnauthenticatedBodyLimit &&
                           ((length && *length > Router::kUnauthenticatedBodyLimit) || m_parser->chunked());
        if (!large) return startBody();
        // A large body costs memory and parse time before the key inside it can be checked. A key in a
        // header is checked first (on a worker: it reads the database); without one, only a few such
        // bodies are read at a time.
        // (The hosted API's SDKs put the key in the JSON body instead, which cannot be read before the body.)
        const auto view = [](beast::string_view v) { return std::string_view(v.data(), v.size()); };
        const auto credential = headerCredential(view(req[http::field::authorization]), view(req["X-API-Key"]));
        if (!credential.empty() && m_shared.router.credentialCheck()) {
            net::post(m_shared.workers, [self = shared_from_this(), credential] {
                bool valid = false;
                try {
                    valid = self->m_shared.router.credentialCheck()(credential);
                } catch (const std::exception&) {
                    valid = false;
                }
                net::post(self->m_stream.get_executor(), [self, valid] {
                    if (valid) return self->startBody();
                    self->sendError(401,
                                    "invalid API key: a request body over " +
                                        std::to_string(Router::kUnauthenticatedBodyLimit) +
                                        " bytes is read only for a valid key",
                                    false);
                });
            });
            return;
        }
        auto taken = m_shared.anonymousLarge.fetch_add(1);
        if (taken >= m_shared.options.anonymousLargeBodies) {
            m_shared.anonymousLarge.fetch_sub(1);
            return send(busy("too many large request bodies from clients without a key header are being read; "
                             "retry shortly, or send the API key in an 'Authorization: Bearer' or 'X-API-Key' header",
                             2),
                        false);
        }
        m_holdsLargeBodySlot = true;
        startBody();
    }

    void startBody() {
        auto& req = m_parser->get();
        m_stream.expires_after(m_shared.options.requestTimeout);
        if (beast::iequals(req[http::field::expect], "100-continue")) {
            auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
            http::async_write(m_stream, *cont, [self = shared_from_this(), cont](beast::error_code e, std::size_t) {
                if (e) return self->close();
                self->readBody();
            });
            return;
        }
        readBody();
    }

    // The current request's route runs on this I/O thread (Router::addInline).
    bool runsInline() const { return m_match.route != nullptr && m_match.route->runsInline; }

    void releaseLargeBodySlot() {
        if (m_holdsLargeBodySlot) m_shared.anonymousLarge.fetch_sub(1);
        m_holdsLargeBodySlot = false;
    }

    void readBody() {
        if (m_parser->is_done()) return onBody({}, 0);
        http::async_read(m_stream, m_buffer, *m_parser,
                         beast::bind_front_handler(&Session::onBody, shared_from_this()));
    }

    void onBody(beast::error_code ec, std::size_t) {
        releaseLargeBodySlot();
        if (ec) return failWith(ec);
        auto beastReq = m_parser->release();
        auto req = std::make_shared<Request>();
        req->method = std::string(beastReq.method_string());
        req->target = std::string(beastReq.target());
        splitTarget(req->target, *req);
        std::string forwardedFor;  // every X-Forwarded-For line, in order, as one list
        for (const auto& field : beastReq) {
            if (beast::iequals(field.name_string(), "X-Forwarded-For")) {
                forwardedFor += (forwardedFor.empty() ? "" : ",") + std::string(field.value());
            }
            req->headers[std::string(field.name_string())] = std::string(field.value());
        }
        req->body = std::move(beastReq.body());
        req->remoteAddress = resolveClientAddress(m_ip, forwardedFor, m_shared.options.trustedProxies);
        req->requestId = requestIdFor(req->header("X-Request-Id"));
        const auto started = std::chrono::steady_clock::now();
        const bool keepAlive = beastReq.keep_alive();
        const unsigned version = beastReq.version();
        const bool head = req->method == "HEAD";
        if (runsInline()) {
            auto response = dispatchToHandler(std::move(m_match), *req, m_shared.options);
            return answer(*req, response, started, keepAlive, version, head);
        }
        if (m_shared.queued.fetch_add(1) >= m_shared.options.maxQueuedRequests) {
            m_shared.queued.fetch_sub(1);
            auto response = busy("the server is busy: " + std::to_string(m_shared.options.maxQueuedRequests) +
                                     " requests are waiting; retry shortly",
                                 1);
            return answer(*req, response, started, keepAlive, version, head);
        }
        net::post(m_shared.workers, [self = shared_from_this(), req, match = std::move(m_match), started, keepAlive,
                                     version, head]() mutable {
            self->m_shared.queued.fetch_sub(1);
            auto response =
                std::make_shared<Response>(dispatchToHandler(std::move(match), *req, self->m_shared.options));
            net::post(self->m_stream.get_executor(), [self, req, response, started, keepAlive, version, head] {
                self->answer(*req, *response, started, keepAlive, version, head);
            });
        });
    }

    // Writes a request's response with its X-Request-Id, and logs it.
    void answer(const Request& req, Response& response, std::chrono::steady_clock::time_point started, bool keepAlive,
                unsigned version, bool head) {
        response.headers["X-Request-Id"] = req.requestId;
        if (m_shared.options.log) {
            const double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
            const nlohmann::json line{{"time", utcNow()},
                                      {"level", response.status >= 500 ? "error" : "info"},
                                      {"event", "request"},
                                      {"request_id", req.requestId},
                                      {"method", req.method},
                                      {"path", req.path},
                                      {"status", response.status},
                                      {"duration_ms", std::round(ms * 10) / 10},
                                      {"bytes", response.body.size()},
                                      {"remote", req.remoteAddress}};
            m_shared.options.log(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        }
        write(response, keepAlive, version, head);
    }

    void sendError(int status, const std::string& message, bool keepAlive) {
        send(Response::error(status, message), keepAlive);
    }

    void send(const Response& response, bool keepAlive) { write(response, keepAlive, 11, false); }

    void write(const Response& response, bool keepAlive, unsigned version, bool head) {
        auto res =
            std::make_shared<http::response<http::string_body>>(static_cast<http::status>(response.status), version);
        res->set(http::field::server, "easel");
        for (const auto& [name, value] : response.headers) res->set(name, value);
        if (!head) res->body() = response.body;
        res->keep_alive(keepAlive && !m_overflow);
        res->prepare_payload();
        if (head) res->content_length(response.body.size());
        m_stream.expires_after(m_shared.options.requestTimeout);
        http::async_write(m_stream, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
            if (ec) return self->close();
            if (!res->keep_alive()) return self->close();
            self->readHeader();
        });
    }

    // Lingering close (RFC 9112, 9.6): stop sending, then read and drop what the client is still
    // sending (an over-limit body, say) for a moment before closing, so that its TCP stack does not
    // answer our response with a reset and lose it.
    void close() {
        beast::error_code ignored;
        m_stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        m_stream.expires_after(std::chrono::seconds(2));
        drain(0);
    }

    void drain(std::size_t total) {
        auto chunk = std::make_shared<std::array<char, 16 * 1024>>();
        m_stream.async_read_some(net::buffer(*chunk),
                                 [self = shared_from_this(), chunk, total](beast::error_code ec, std::size_t n) {
                                     if (ec || total + n > 16u * 1024 * 1024) {
                                         beast::error_code ignored;
                                         self->m_stream.socket().close(ignored);
                                         return;
                                     }
                                     self->drain(total + n);
                                 });
    }

    beast::tcp_stream m_stream;
    beast::flat_buffer m_buffer;
    std::optional<http::request_parser<http::string_body>> m_parser;
    Shared& m_shared;
    std::string m_ip;     // the TCP peer
    std::string m_group;  // its per-address counter; empty for a trusted proxy
    bool m_overflow = false;
    Router::Match m_match;  // the current request's route, from its header
    bool m_holdsLargeBodySlot = false;
};

}  // namespace

struct HttpServer::Impl {
    Shared shared;
    net::io_context ioc;
    tcp::acceptor acceptor;
    net::steady_timer retryTimer;
    std::vector<std::thread> threads;
    std::mutex stopMutex;
    std::mutex waitMutex;
    net::io_context* waitContext = nullptr;  // runUntilSignalled's, so that stop() can end the wait
    bool stopRequested = false;              // guarded by waitMutex, like waitContext
    bool started = false;
    bool stopped = false;
    std::uint16_t boundPort = 0;

    Impl(HttpServerOptions options, Router router)
        : shared(std::move(options), std::move(router)),
          ioc(shared.options.ioThreads),
          acceptor(net::make_strand(ioc)),
          retryTimer(acceptor.get_executor()) {}

    void accept() {
        acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
            if (ec) {
                if (ec == net::error::operation_aborted) return;
                // Out of descriptors (EMFILE) and the like fail at once: back off instead of spinning.
                retryTimer.expires_after(std::chrono::milliseconds(100));
                retryTimer.async_wait([this](beast::error_code e) {
                    if (!e) accept();
                });
                return;
            }
            beast::error_code endpointError;
            const auto remote = socket.remote_endpoint(endpointError);
            const std::string ip = endpointError ? std::string("?") : remote.address().to_string();
            // A trusted proxy carries many clients: only the global cap applies to it.
            const std::string group = shared.trustedProxy(ip) ? std::string() : addressGroup(ip);
            bool admitted = false;
            bool overflow = false;
            {
                std::lock_guard lock(shared.connectionsMutex);
                const bool room = shared.openConnections < shared.options.maxConnections + kOverflowConnections;
                const bool addressRoom =
                    group.empty() || shared.connectionsPerIp[group] < shared.options.maxConnectionsPerIp;
                if (room && addressRoom) {
                    overflow = shared.openConnections >= shared.options.maxConnections;
                    ++shared.openConnections;
                    if (!group.empty()) ++shared.connectionsPerIp[group];
                    admitted = true;
                } else if (!group.empty() && shared.connectionsPerIp[group] == 0) {
                    shared.connectionsPerIp.erase(group);
                }
            }
            if (admitted) {
                std::make_shared<Session>(std::move(socket), shared, ip, group, overflow)->start();
            } else {
                beast::error_code ignored;
                socket.close(ignored);
            }
            accept();
        });
    }
};

HttpServer::HttpServer(HttpServerOptions options, Router router)
    : m_impl(std::make_unique<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
    auto& impl = *m_impl;
    beast::error_code ec;
    const auto address = net::ip::make_address(impl.shared.options.address, ec);
    if (ec) throw std::runtime_error("invalid listen address '" + impl.shared.options.address + "'");
    const tcp::endpoint endpoint(address, impl.shared.options.port);
    impl.acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl.acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) impl.acceptor.bind(endpoint, ec);
    if (!ec) impl.acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
        throw std::runtime_error("cannot listen on " + impl.shared.options.address + ":" +
                                 std::to_string(impl.shared.options.port) + ": " + ec.message());
    }
    impl.boundPort = impl.acceptor.local_endpoint().port();
    impl.accept();
    for (int i = 0; i < std::max(1, impl.shared.options.ioThreads); ++i) {
        impl.threads.emplace_back([&impl] { impl.ioc.run(); });
    }
    impl.started = true;
}

std::uint16_t HttpServer::port() const { return m_impl->boundPort; }

void HttpServer::stop() {
    auto& impl = *m_impl;
    {
        std::lock_guard wait(impl.waitMutex);
        impl.stopRequested = true;
        if (impl.waitContext != nullptr) impl.waitContext->stop();  // ends runUntilSignalled
    }
    std::lock_guard lock(impl.stopMutex);
    if (impl.stopped) return;
    impl.stopped = true;
    // Stop the I/O threads first, so that nothing posts to the workers any more; then nothing else
    // touches the acceptor and it can be closed from here; then let running handlers finish. Open
    // sessions are destroyed with the io_context, while the shared state they unregister from lives.
    impl.ioc.stop();
    for (auto& t : impl.threads) {
        if (t.joinable()) t.join();
    }
    beast::error_code ignored;
    impl.acceptor.close(ignored);
    impl.shared.workers.join();
}

void HttpServer::runUntilSignalled(const std::function<void()>& beforeStop) {
    net::io_context signalContext;
    net::signal_set signals(signalContext, SIGINT, SIGTERM);
    signals.async_wait([](beast::error_code, int) {});
    {
        std::lock_guard lock(m_impl->waitMutex);
        m_impl->waitContext = &signalContext;
        if (m_impl->stopRequested) signalContext.stop();  // stop() came first
    }
    signalContext.run();
    {
        std::lock_guard lock(m_impl->waitMutex);
        m_impl->waitContext = nullptr;
    }
    if (beforeStop) beforeStop();
    stop();
}

}  // namespace easel::server
