#include "net/aws_sigv4.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <utility>
#include <vector>

namespace easel::net {
namespace {

using Digest = std::array<unsigned char, crypto_auth_hmacsha256_BYTES>;

Digest hmac(std::string_view key, std::string_view message) {
    crypto_auth_hmacsha256_state state;
    Digest out{};
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()), message.size());
    crypto_auth_hmacsha256_final(&state, out.data());
    return out;
}

std::string_view view(const Digest& d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }

// Header values as SigV4 canonicalises them: outer blanks trimmed, inner runs of blanks made one space.
std::string trimValue(std::string_view value) {
    std::string out;
    bool space = false;
    for (const char c : value) {
        if (c == ' ' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
    return out;
}

std::string credentialScope(const std::string& date, const AwsScope& scope) {
    return date + "/" + scope.region + "/" + scope.service + "/aws4_request";
}

std::string signature(const std::string& stringToSign, const std::string& date, const AwsCredentials& credentials,
                      const AwsScope& scope) {
    const auto kDate = hmac("AWS4" + credentials.secretKey, date);
    const auto kRegion = hmac(view(kDate), scope.region);
    const auto kService = hmac(view(kRegion), scope.service);
    const auto kSigning = hmac(view(kService), "aws4_request");
    const auto sig = hmac(view(kSigning), stringToSign);
    return hexLower(sig.data(), sig.size());
}

struct Canonical {
    std::string request;
    std::string signedHeaders;
};

Canonical canonicalRequest(const AwsRequest& r, const std::map<std::string, std::string>& query) {
    std::map<std::string, std::string> headers;  // sorted by lower-case name
    for (const auto& [name, value] : r.headers) headers[lower(name)] = trimValue(value);
    Canonical c;
    std::string headerLines;
    for (const auto& [name, value] : headers) {
        headerLines += name + ":" + value + "\n";
        if (!c.signedHeaders.empty()) c.signedHeaders += ';';
        c.signedHeaders += name;
    }
    c.request = r.method + "\n" + awsUriEncode(r.path.empty() ? "/" : r.path, true) + "\n" + canonicalAwsQuery(query) +
                "\n" + headerLines + "\n" + c.signedHeaders + "\n" + r.payloadHash;
    return c;
}

std::string stringToSign(const std::string& when, const std::string& scope, const std::string& canonical) {
    return "AWS4-HMAC-SHA256\n" + when + "\n" + scope + "\n" + sha256Hex(canonical);
}

}  // namespace

std::string hexLower(const unsigned char* bytes, std::size_t size) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out += kHex[bytes[i] >> 4];
        out += kHex[bytes[i] & 15];
    }
    return out;
}

std::string sha256Hex(std::string_view data) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
    return hexLower(digest, sizeof digest);
}

std::string awsUriEncode(std::string_view text, bool keepSlash) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved || (keepSlash && c == '/')) {
            out += ch;
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

std::string amzDate(std::int64_t unixSeconds) {
    const auto t = static_cast<std::time_t>(unixSeconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[20];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::string canonicalAwsQuery(const std::map<std::string, std::string>& query) {
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(query.size());
    for (const auto& [name, value] : query) encoded.emplace_back(awsUriEncode(name, false), awsUriEncode(value, false));
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto& [name, value] : encoded) {
        if (!out.empty()) out += '&';
        out += name + "=" + value;
    }
    return out;
}

std::string signAwsRequest(AwsRequest& request, const AwsCredentials& credentials, const AwsScope& scope,
                           std::int64_t unixSeconds) {
    const auto when = amzDate(unixSeconds);
    const auto date = when.substr(0, 8);
    // Drop an Authorization left from an earlier signing: it must not sign itself.
    std::erase_if(request.headers, [](const auto& h) { return lower(h.first) == "authorization"; });
    request.headers["x-amz-date"] = when;
    request.headers["x-amz-content-sha256"] = request.payloadHash;
    if (!credentials.sessionToken.empty()) request.headers["x-amz-security-token"] = credentials.sessionToken;
    const auto canonical = canonicalRequest(request, request.query);
    const auto scopeText = credentialScope(date, scope);
    request.headers["authorization"] =
        "AWS4-HMAC-SHA256 Credential=" + credentials.accessKey + "/" + scopeText +
        ",SignedHeaders=" + canonical.signedHeaders +
        ",Signature=" + signature(stringToSign(when, scopeText, canonical.request), date, credentials, scope);
    return canonical.request;
}

std::string presignAwsQuery(const AwsRequest& request, const AwsCredentials& credentials, const AwsScope& scope,
                            std::int64_t unixSeconds, std::int64_t expiresSeconds) {
    const auto when = amzDate(unixSeconds);
    const auto date = when.substr(0, 8);
    const auto scopeText = credentialScope(date, scope);
    AwsRequest r;
    r.method = request.method;
    r.path = request.path;
    r.query = request.query;
    for (const auto& [name, value] : request.headers) {
        if (lower(name) == "host") r.headers["host"] = value;
    }
    r.payloadHash = "UNSIGNED-PAYLOAD";
    r.query["X-Amz-Algorithm"] = "AWS4-HMAC-SHA256";
    r.query["X-Amz-Credential"] = credentials.accessKey + "/" + scopeText;
    r.query["X-Amz-Date"] = when;
    r.query["X-Amz-Expires"] = std::to_string(expiresSeconds);
    r.query["X-Amz-SignedHeaders"] = "host";
    if (!credentials.sessionToken.empty()) r.query["X-Amz-Security-Token"] = credentials.sessionToken;
    const auto canonical = canonicalRequest(r, r.query);
    const auto sig = signature(stringToSign(when, scopeText, canonical.request), date, credentials, scope);
    return canonicalAwsQuery(r.query) + "&X-Amz-Signature=" + sig;
}

}  // namespace easel::net
