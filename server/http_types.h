#pragma once
// Plain request/response structs: controllers are functions over these, so they can be unit-tested
// without sockets. Beast types stay inside http_server.cpp.

#include <cstddef>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace easel::server {

// Case-insensitive header map (HTTP header names are case-insensitive).
struct CaseInsensitiveLess {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const;
};
using HeaderMap = std::map<std::string, std::string, CaseInsensitiveLess>;

struct Request {
    std::string method;  // "GET", "POST", ...
    std::string target;  // path and query as received
    std::string path;    // decoded path without query
    std::map<std::string, std::string> query;
    std::map<std::string, std::string> pathParams;  // from {name} segments of the route pattern
    HeaderMap headers;
    std::string body;
    std::string remoteAddress;
    // The client's X-Request-Id when it is a plain token (at most 64 of A-Z a-z 0-9 . _ -), else one
    // made here; echoed in the response's X-Request-Id and in every log line about the request.
    std::string requestId;

    std::string header(std::string_view name) const;
};

struct Response {
    int status = 200;
    HeaderMap headers;
    std::string body;

    static Response json(int status, const nlohmann::json& body);
    // The ModelsLab error shape: {"status":"error","message":...,"messege":...} (their legacy
    // spelling, which clients still read).
    static Response error(int status, std::string_view message);
};

// Sets "message" and the hosted API's legacy spelling "messege" (its clients still read it) to the
// same text. Every answer that carries a message goes through here, so the alias is added in one place.
void setMessage(nlohmann::json& body, std::string_view message);

}  // namespace easel::server
