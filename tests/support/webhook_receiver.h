#pragma once
// A loopback webhook receiver for the integration tests: records what arrives and answers 500 to the
// first `failFirst` deliveries, 200 after.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/http_server.h"
#include "server/router.h"

namespace easel::testing {

// A loopback receiver that records what arrives and answers with a chosen status.
class WebhookReceiver {
public:
    explicit WebhookReceiver(int failFirst = 0) : m_failFirst(failFirst) {
        router.add("POST", "/hook", [this](const server::Request& r) {
            std::lock_guard lock(m_mutex);
            received.push_back(r);
            return server::Response::json(static_cast<int>(received.size()) <= m_failFirst ? 500 : 200, {{"ok", true}});
        });
        server::HttpServerOptions o;
        o.port = 0;
        m_server = std::make_unique<server::HttpServer>(o, router);
        m_server->start();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_server->port()) + "/hook"; }
    std::vector<server::Request> snapshot() {
        std::lock_guard lock(m_mutex);
        return received;
    }

    server::Router router;
    std::vector<server::Request> received;

private:
    int m_failFirst;
    std::mutex m_mutex;
    std::unique_ptr<server::HttpServer> m_server;
};

}  // namespace easel::testing
