#pragma once
// The HTTP listener (Boost.Beast), kept behind a pimpl so that Beast's headers stay in one file.
// I/O threads only parse and write; every handler runs on a separate worker pool, so password
// hashing or image work never stalls other connections.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/client_address.h"
#include "server/router.h"

namespace easel::server {

struct HttpServerOptions {
    std::string address = "127.0.0.1";
    std::uint16_t port = 7860;  // 0 = pick a free port (tests)
    std::size_t headerLimit = 16 * 1024;
    std::chrono::milliseconds headerTimeout{10'000};    // whole header, incl. keep-alive idle time
    std::chrono::milliseconds requestTimeout{120'000};  // header + body + handler + response
    // Open connections from one address (an IPv6 /64 counts as one); trusted proxies are exempt.
    std::size_t maxConnectionsPerIp = 64;
    // Open connections in all. Past it, up to 64 more are read just far enough to answer inline
    // routes (the readiness probe) and to tell everything else 503; beyond those they are closed.
    std::size_t maxConnections = 1024;
    // Requests waiting for a worker; past it a request is answered 503 at once instead of queued.
    std::size_t maxQueuedRequests = 256;
    // Bodies over Router::kUnauthenticatedBodyLimit read at once for clients without a valid key in a
    // header (the key may be in the JSON body, as the hosted API's SDKs send it); more get 503.
    std::size_t anonymousLargeBodies = 4;
    // Reverse proxies whose X-Forwarded-For is believed (--trusted-proxy).
    std::vector<CidrBlock> trustedProxies;
    int ioThreads = 1;
    int workerThreads = 2;
    // Receives one JSON line per answered request (time, request_id, method, path without the query,
    // status, duration_ms, bytes, remote) and per handler failure; empty: no access log.
    std::function<void(const std::string& line)> log;
};

class HttpServer {
public:
    HttpServer(HttpServerOptions options, Router router);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and starts serving on background threads; throws std::runtime_error when it cannot bind.
    void start();
    // The bound port (useful with port 0).
    std::uint16_t port() const;
    // Stops accepting, closes connections and joins all threads. Idempotent.
    void stop();
    // Blocks until stop() is called or SIGINT/SIGTERM arrives, then calls `beforeStop` (which should
    // release whatever handlers wait for) and stops.
    void runUntilSignalled(const std::function<void()>& beforeStop = {});

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace easel::server
