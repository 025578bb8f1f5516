#pragma once
// AWS Signature Version 4, as S3-compatible stores (AWS, MinIO, Ceph RGW, Garage, R2, s3rver) check
// it: a signed Authorization header for requests the server makes itself, and pre-signed GET links
// that a browser can follow without a key. Pure functions of their inputs (the time included), so
// the tests check them against the published examples.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace easel::net {

struct AwsCredentials {
    std::string accessKey;
    std::string secretKey;
    std::string sessionToken;  // temporary credentials only
};

struct AwsScope {
    std::string region = "us-east-1";
    std::string service = "s3";
};

// One request to sign. `path` is the raw object path ("/bucket/key"); each segment is percent-encoded
// here. `query` holds raw names and values. `headers` are sent as they are; `host` must be among
// them (with the port when it is not the scheme's default), with lower-case names.
struct AwsRequest {
    std::string method = "GET";
    std::string path = "/";
    std::map<std::string, std::string> query;
    std::map<std::string, std::string> headers;
    std::string payloadHash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

std::string sha256Hex(std::string_view data);
// Lower-case hex of bytes (digests, signatures).
std::string hexLower(const unsigned char* bytes, std::size_t size);
// RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~ (and '/' when kept).
std::string awsUriEncode(std::string_view text, bool keepSlash);
// "20130524T000000Z" for a Unix time.
std::string amzDate(std::int64_t unixSeconds);

// Adds x-amz-date, x-amz-content-sha256, x-amz-security-token (when set) and authorization to
// request.headers. Returns the canonical request (for tests and debugging; it holds no secret).
std::string signAwsRequest(AwsRequest& request, const AwsCredentials& credentials, const AwsScope& scope,
                           std::int64_t unixSeconds);

// The query string (without '?') of a pre-signed request: request.query plus the X-Amz-* fields, the
// signature last. Only the host header is signed; the payload is UNSIGNED-PAYLOAD.
std::string presignAwsQuery(const AwsRequest& request, const AwsCredentials& credentials, const AwsScope& scope,
                            std::int64_t unixSeconds, std::int64_t expiresSeconds);

// The canonical query string: names and values encoded, sorted by name.
std::string canonicalAwsQuery(const std::map<std::string, std::string>& query);

}  // namespace easel::net
