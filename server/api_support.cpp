#include "server/api_support.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "common/base64.h"

namespace easel::server {

namespace {

// True when arrays/objects nest deeper than `limit`: checked on the raw text before parsing, since
// building (and destroying) a value a million brackets deep is what a hostile body would aim at.
bool nestsDeeperThan(std::string_view text, int limit) {
    int depth = 0;
    bool inString = false;
    bool escaped = false;
    for (const char c : text) {
        if (inString) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                inString = false;
            }
        } else if (c == '"') {
            inString = true;
        } else if (c == '[' || c == '{') {
            if (++depth > limit) return true;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return false;
}

}  // namespace

nlohmann::json jsonBody(const Request& req) {
    if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
    if (nestsDeeperThan(req.body, kMaxJsonDepth)) {
        throw ServiceError(ErrorCode::BadRequest,
                           "the request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded()) throw ServiceError(ErrorCode::BadRequest, "the request body is not valid JSON");
    if (!body.is_object()) throw ServiceError(ErrorCode::BadRequest, "the request body must be a JSON object");
    return body;
}

int httpStatus(ErrorCode code) {
    switch (code) {
        case ErrorCode::BadRequest:
            return 400;
        case ErrorCode::Unauthorized:
            return 401;
        case ErrorCode::PaymentRequired:
            return 402;
        case ErrorCode::Forbidden:
            return 403;
        case ErrorCode::NotFound:
            return 404;
        case ErrorCode::Conflict:
            return 409;
        case ErrorCode::TooLarge:
            return 413;
        case ErrorCode::TooManyRequests:
            return 429;
        case ErrorCode::InsufficientStorage:
            return 507;
        case ErrorCode::Unavailable:
            return 503;
        case ErrorCode::Internal:
            return 500;
    }
    return 500;
}

Response errorResponse(const ServiceError& e) {
    nlohmann::json body{{"status", "error"}};
    setMessage(body, e.what());
    if (!e.fieldErrors.empty()) body["errors"] = e.fieldErrors;
    if (e.retryAfterSeconds) body["retry_after"] = *e.retryAfterSeconds;
    auto r = Response::json(httpStatus(e.code()), body);
    if (e.retryAfterSeconds) r.headers["Retry-After"] = std::to_string(*e.retryAfterSeconds);
    return r;
}

std::string bearerTokenOf(std::string_view auth) {
    constexpr std::string_view kPrefix = "Bearer ";
    if (auth.size() <= kPrefix.size()) return {};
    for (std::size_t i = 0; i < kPrefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(auth[i])) != std::tolower(static_cast<unsigned char>(kPrefix[i]))) {
            return {};
        }
    }
    std::string token(auth.substr(kPrefix.size()));
    while (!token.empty() && token.back() == ' ') token.pop_back();
    return token;
}

std::string bearerToken(const Request& req) { return bearerTokenOf(req.header("Authorization")); }

std::string basicPasswordOf(std::string_view auth) {
    constexpr std::string_view kPrefix = "Basic ";
    if (auth.size() <= kPrefix.size()) return {};
    for (std::size_t i = 0; i < kPrefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(auth[i])) != std::tolower(static_cast<unsigned char>(kPrefix[i]))) {
            return {};
        }
    }
    const auto decoded = decodeBase64(auth.substr(kPrefix.size()));
    if (!decoded) return {};
    const std::string pair(decoded->begin(), decoded->end());
    const auto colon = pair.find(':');
    if (colon == std::string::npos) return pair;
    // A client given only a key may send it as the user name with an empty password.
    return colon + 1 < pair.size() ? pair.substr(colon + 1) : pair.substr(0, colon);
}

std::string headerCredential(std::string_view authorization, std::string_view apiKeyHeader) {
    auto token = bearerTokenOf(authorization);
    if (token.empty()) token = basicPasswordOf(authorization);
    return token.empty() ? std::string(apiKeyHeader) : token;
}

std::string apiKeyFrom(const Request& req, const nlohmann::json& body) {
    if (const auto it = body.find("key"); it != body.end() && it->is_string() && !it->get<std::string>().empty()) {
        return it->get<std::string>();
    }
    return headerCredential(req.header("Authorization"), req.header("X-API-Key"));
}

std::optional<std::string> FieldReader::string(const std::string& name, std::size_t maxLength) {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) return std::nullopt;
    std::string value;
    if (it->is_string()) {
        value = it->get<std::string>();
    } else if (it->is_number()) {
        value = it->dump();
    } else {
        errors[name].push_back("must be a string");
        return std::nullopt;
    }
    if (value.size() > maxLength) {
        errors[name].push_back("must have at most " + std::to_string(maxLength) + " characters");
        return std::nullopt;
    }
    return value;
}

std::optional<double> FieldReader::number(const std::string& name) {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (it->is_number()) return it->get<double>();
    if (it->is_string()) {
        const auto s = it->get<std::string>();
        if (s.empty()) return std::nullopt;  // clients send "" for "not set"
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end != s.c_str() && *end == '\0' && std::isfinite(v)) return v;
    }
    errors[name].push_back("must be a number");
    return std::nullopt;
}

std::optional<std::int64_t> FieldReader::integer(const std::string& name) {
    const auto v = number(name);
    if (!v) return std::nullopt;
    if (std::floor(*v) != *v || std::fabs(*v) > 9.0e15) {
        errors[name].push_back("must be a whole number");
        return std::nullopt;
    }
    return static_cast<std::int64_t>(*v);
}

std::optional<bool> FieldReader::boolean(const std::string& name) {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (it->is_boolean()) return it->get<bool>();
    if (it->is_number_integer()) return it->get<std::int64_t>() != 0;
    if (it->is_string()) {
        std::string s = it->get<std::string>();
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (s == "yes" || s == "true" || s == "1" || s == "on") return true;
        if (s == "no" || s == "false" || s == "0" || s == "off" || s.empty()) return false;
    }
    errors[name].push_back("must be true/false or \"yes\"/\"no\"");
    return std::nullopt;
}

int FieldReader::smallInteger(const std::string& name, int fallback) {
    const auto v = integer(name);
    if (v && (*v < -1'000'000 || *v > 1'000'000)) {
        errors[name].push_back("is out of range");
        return fallback;
    }
    return v ? static_cast<int>(*v) : fallback;
}

void FieldReader::check() const {
    if (!errors.empty()) throw validationError(errors);
}

int queryInt(const Request& req, const std::string& name, int fallback, int lo, int hi) {
    const auto it = req.query.find(name);
    if (it == req.query.end() || it->second.empty()) return fallback;
    try {
        std::size_t used = 0;
        const int v = std::stoi(it->second, &used);
        if (used == it->second.size()) return std::clamp(v, lo, hi);
    } catch (const std::exception&) {
    }
    throw validationError({{name, {"must be a whole number"}}});
}

std::string requireString(const nlohmann::json& body, const std::string& name, std::size_t maxLength) {
    FieldReader r{body, {}};
    const auto v = r.string(name, maxLength);
    r.check();
    if (!v || v->empty()) throw validationError({{name, {"is required"}}});
    return *v;
}

}  // namespace easel::server
