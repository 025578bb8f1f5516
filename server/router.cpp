#include "server/router.h"

#include <algorithm>

namespace easel::server {
namespace {

std::vector<std::string_view> splitPath(std::string_view path) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto slash = path.find('/', start);
        const auto end = slash == std::string_view::npos ? path.size() : slash;
        if (end > start) parts.push_back(path.substr(start, end - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return parts;
}

bool matchPattern(std::string_view pattern, std::string_view path, std::map<std::string, std::string>& params) {
    const auto want = splitPath(pattern);
    const auto have = splitPath(path);
    if (want.size() != have.size()) return false;
    std::map<std::string, std::string> found;
    for (std::size_t i = 0; i < want.size(); ++i) {
        if (want[i].size() > 2 && want[i].front() == '{' && want[i].back() == '}') {
            found[std::string(want[i].substr(1, want[i].size() - 2))] = std::string(have[i]);
        } else if (want[i] != have[i]) {
            return false;
        }
    }
    params = std::move(found);
    return true;
}

}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler, std::string summary, std::size_t bodyLimit) {
    m_routes.push_back({std::move(method), std::move(pattern), std::move(handler), bodyLimit, std::move(summary)});
}

void Router::addInline(std::string method, std::string pattern, Handler handler, std::string summary) {
    m_routes.push_back({std::move(method), std::move(pattern), std::move(handler), 0, std::move(summary), true});
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
    Match result;
    for (const auto& route : m_routes) {
        std::map<std::string, std::string> params;
        if (!matchPattern(route.pattern, path, params)) continue;
        result.pathKnown = true;
        if (route.method == method || (method == "HEAD" && route.method == "GET")) {
            result.route = &route;
            result.params = std::move(params);
            result.allowed.clear();
            return result;
        }
        auto add = [&](const std::string& m) {
            if (std::find(result.allowed.begin(), result.allowed.end(), m) == result.allowed.end())
                result.allowed.push_back(m);
        };
        add(route.method);
        if (route.method == "GET") add("HEAD");
    }
    return result;
}

std::size_t Router::largestBodyLimit() const {
    std::size_t largest = kDefaultBodyLimit;
    for (const auto& route : m_routes) largest = std::max(largest, route.bodyLimit);
    return largest;
}

}  // namespace easel::server
