#include "server/http_types.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace easel::server {

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
    });
}

std::string Request::header(std::string_view name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

Response Response::json(int status, const nlohmann::json& body) {
    Response r;
    r.status = status;
    r.headers["Content-Type"] = "application/json";
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
}

Response Response::error(int status, std::string_view message) {
    nlohmann::json body{{"status", "error"}};
    setMessage(body, message);
    return json(status, body);
}

void setMessage(nlohmann::json& body, std::string_view message) {
    body["message"] = message;
    body["messege"] = message;
}

}  // namespace easel::server
