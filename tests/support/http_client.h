#pragma once
// One-shot HTTP/1.1 requests to 127.0.0.1 for the integration tests (Connection: close).

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "raw_http.h"

namespace easel::testing {

struct HttpResult {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    std::string header(const std::string& name) const {
        const auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

inline HttpResult httpRequest(std::uint16_t port, const std::string& method, const std::string& path,
                              const std::string& body = {}, const std::map<std::string, std::string>& headers = {}) {
    RawConnection c(port);
    std::string req = method + " " + path + " HTTP/1.1\r\nConnection: close\r\n";
    if (!headers.contains("Host")) req += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    if (!body.empty() || method == "POST" || method == "DELETE") {
        if (!headers.contains("Content-Type")) req += "Content-Type: application/json\r\n";
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "\r\n" + body;
    c.send(req);
    const auto raw = c.readAll(std::chrono::milliseconds(60'000));
    HttpResult r;
    const auto headerEnd = raw.find("\r\n\r\n");
    if (raw.size() < 12 || headerEnd == std::string::npos) return r;
    r.status = std::stoi(raw.substr(9, 3));
    std::size_t pos = raw.find("\r\n") + 2;
    while (pos < headerEnd) {
        const auto eol = raw.find("\r\n", pos);
        const auto line = raw.substr(pos, eol - pos);
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            auto value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            r.headers[name] = value;
        }
        pos = eol + 2;
    }
    r.body = raw.substr(headerEnd + 4);
    return r;
}

inline HttpResult postJson(std::uint16_t port, const std::string& path, const nlohmann::json& body,
                           const std::map<std::string, std::string>& headers = {}) {
    return httpRequest(port, "POST", path, body.dump(), headers);
}

}  // namespace easel::testing
