#pragma once
// Outbound HTTP(S) for webhooks, init-image URLs and model downloads (Boost.Beast + OpenSSL, behind
// this header). Every call has a deadline and a size limit, and by default refuses private,
// loopback and link-local addresses (checked on the resolved address it then connects to, so a DNS
// answer cannot switch it afterwards) unless the admin allows them.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace easel::net {

struct OutboundRequest {
    std::string method = "GET";
    std::string url;
    std::map<std::string, std::string> headers;
    std::string body;
    std::chrono::milliseconds timeout{15'000};  // the whole exchange
    std::uint64_t maxBody = 1u << 20;           // bytes of response body accepted
    // When set, the body is streamed here instead of collected (downloads); return false to abort.
    std::function<bool(std::string_view chunk)> sink;
    // Called with the status and lower-case headers before any body chunk reaches `sink`.
    std::function<void(int status, const std::map<std::string, std::string>& headers)> onHeaders;
    int maxRedirects = 5;
};

struct OutboundResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

struct UrlPolicy {
    bool allowPrivateAddresses = false;
};

class OutboundError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Follows redirects (re-checking each address). Throws OutboundError with a message that can be shown.
OutboundResponse httpFetch(const OutboundRequest& request, const UrlPolicy& policy);

// True for loopback, private, link-local, unspecified and multicast addresses (IPv4 and IPv6).
bool isPrivateAddress(const std::string& address);

// Hex HMAC-SHA256 of `message` under `key`.
std::string hmacSha256Hex(std::string_view key, std::string_view message);

}  // namespace easel::net
