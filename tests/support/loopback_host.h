#pragma once
// A second HTTP server on an ephemeral loopback port, for what a test serves to the server under test:
// pictures behind links (init_image, training images). Routes are added before start().

#include <memory>
#include <string>
#include <vector>

#include "server/http_server.h"
#include "server/router.h"

namespace easel::testing {

// A 200 answer carrying PNG bytes.
inline server::Response pngResponse(const std::vector<std::uint8_t>& png) {
    server::Response out;
    out.headers["Content-Type"] = "image/png";
    out.body.assign(png.begin(), png.end());
    return out;
}

class LoopbackHost {
public:
    LoopbackHost() = default;
    LoopbackHost(const LoopbackHost&) = delete;
    LoopbackHost& operator=(const LoopbackHost&) = delete;
    ~LoopbackHost() {
        if (m_http) m_http->stop();
    }

    server::Router& router() { return m_router; }
    void start() {
        server::HttpServerOptions o;
        o.port = 0;
        m_http = std::make_unique<server::HttpServer>(o, m_router);
        m_http->start();
    }
    // "http://127.0.0.1:<port><path>"
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(m_http->port()) + path;
    }

private:
    server::Router m_router;
    std::unique_ptr<server::HttpServer> m_http;
};

}  // namespace easel::testing
