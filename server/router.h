#pragma once
// The route table: method + path pattern -> handler. Patterns are literal segments and {name}
// segments, e.g. "/api/v6/images/fetch/{id}".

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_types.h"

namespace easel::server {

using Handler = std::function<Response(const Request&)>;

struct Route {
    std::string method;
    std::string pattern;
    Handler handler;
    std::size_t bodyLimit;    // bytes accepted in the request body on this route
    std::string summary;      // one line, for the OpenAPI check and --help listings
    bool runsInline = false;  // answered on the I/O thread, never queued: see addInline()
};

// Whether an API key (or session token) sent in a header is valid; no side effects. The server asks it
// before reading a body over Router::kUnauthenticatedBodyLimit.
using CredentialCheck = std::function<bool(const std::string& credential)>;

class Router {
public:
    static constexpr std::size_t kDefaultBodyLimit = 1024 * 1024;

    // Bodies larger than this are read for a client that sent a valid key in a header, or, without
    // one, only while few such bodies are being read (HttpServerOptions::anonymousLargeBodies).
    static constexpr std::size_t kUnauthenticatedBodyLimit = 1024 * 1024;

    void add(std::string method, std::string pattern, Handler handler, std::string summary = {},
             std::size_t bodyLimit = kDefaultBodyLimit);
    // A handler that never blocks (no database, no lock held for long, no body): it runs on the I/O
    // thread and is served even to connections over the connection cap and while every worker is
    // busy. The readiness probe is one.
    void addInline(std::string method, std::string pattern, Handler handler, std::string summary = {});

    void setCredentialCheck(CredentialCheck check) { m_credentialCheck = std::move(check); }
    const CredentialCheck& credentialCheck() const { return m_credentialCheck; }

    struct Match {
        const Route* route = nullptr;
        std::map<std::string, std::string> params;
        bool pathKnown = false;            // some route has this path, maybe with another method (-> 405)
        std::vector<std::string> allowed;  // the methods routes on this path take (the 405's Allow header)
    };
    Match match(std::string_view method, std::string_view path) const;

    // The largest body any route takes: the limit while only the header has been read.
    std::size_t largestBodyLimit() const;

    const std::vector<Route>& routes() const { return m_routes; }

private:
    std::vector<Route> m_routes;
    CredentialCheck m_credentialCheck;
};

}  // namespace easel::server
