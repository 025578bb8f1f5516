#pragma once
// The small controller vocabulary: read the JSON body, read fields leniently (as real clients send
// them: numbers as strings, "yes"/"no" booleans), find the caller's credentials, and turn a
// ServiceError into the ModelsLab-shaped JSON error with the right status. Controllers throw; this
// file decides statuses.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/service_error.h"
#include "server/http_types.h"

namespace easel::server {

// Arrays and objects nested deeper than this are refused before parsing (400).
inline constexpr int kMaxJsonDepth = 64;

// The body as a JSON object; an empty body is {}. Throws a 400 ServiceError for anything else.
nlohmann::json jsonBody(const Request& req);

int httpStatus(ErrorCode code);
Response errorResponse(const ServiceError& e);

// "Authorization: Bearer X" -> X, else "".
std::string bearerTokenOf(std::string_view authorization);
std::string bearerToken(const Request& req);
// "Authorization: Basic base64(user:password)" -> the password (the user name when the password is
// empty), else "". A1111's --api-auth clients send the key this way.
std::string basicPasswordOf(std::string_view authorization);
// A key or token sent in a header: the Bearer token, else the Basic password, else the X-API-Key value.
std::string headerCredential(std::string_view authorization, std::string_view apiKeyHeader);
// The API key from (in order) the body's "key", "Authorization: Bearer", or "X-API-Key".
std::string apiKeyFrom(const Request& req, const nlohmann::json& body);

// Lenient field readers: absent or null -> nullopt; wrong type -> the field's name goes into `errors`.
struct FieldReader {
    const nlohmann::json& body;
    std::map<std::string, std::vector<std::string>> errors;

    std::optional<std::string> string(const std::string& name, std::size_t maxLength = 10'000);
    std::optional<double> number(const std::string& name);
    std::optional<std::int64_t> integer(const std::string& name);
    // An integer field that fits an int with room (within +-1,000,000; the service checks the real
    // range); `fallback` when absent, and "is out of range" past that.
    int smallInteger(const std::string& name, int fallback);
    std::optional<bool> boolean(const std::string& name);
    // Throws the collected field errors, if any.
    void check() const;
};

// A whole-number query parameter clamped to [lo, hi]; `fallback` when absent; a 400 when not a number.
int queryInt(const Request& req, const std::string& name, int fallback, int lo, int hi);

// Required string field with a clear 400.
std::string requireString(const nlohmann::json& body, const std::string& name, std::size_t maxLength = 10'000);

}  // namespace easel::server
