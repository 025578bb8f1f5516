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
    std::size_t bodyLimit;  // bytes accepted in the request body on this route
    std::string summary;    // one line, for the OpenAPI check and --help listings
};

class Router {
public:
    static constexpr std::size_t kDefaultBodyLimit = 1024 * 1024;

    void add(std::string method, std::string pattern, Handler handler, std::string summary = {},
             std::size_t bodyLimit = kDefaultBodyLimit);

    struct Match {
        const Route* route = nullptr;
        std::map<std::string, std::string> params;
        bool pathKnown = false;            // some route has this path, maybe with another method (-> 405)
        std::vector<std::string> allowed;  // the methods routes on this path take (the 405's Allow header)
    };
    Match match(std::string_view method, std::string_view path) const;

    // The largest body any route on this path accepts; decides how much of a body is read at all.
    std::size_t bodyLimitFor(std::string_view method, std::string_view path) const;
    // The largest body any route takes: the limit while only the header has been read.
    std::size_t largestBodyLimit() const;

    const std::vector<Route>& routes() const { return m_routes; }

private:
    std::vector<Route> m_routes;
};

}  // namespace easel::server
