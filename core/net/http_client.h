#pragma once
// Outbound HTTP(S) for webhooks, init-image URLs and model downloads (Boost.Beast + OpenSSL, behind
// this header). Every call has one deadline for the whole exchange, redirects and DNS included,
// enforced on asynchronous operations (Beast's timeouts do not cover blocking calls), an optional
// idle timeout for long downloads, a size limit, and a cancel flag that stops it within ~0.1 s.
// By default it refuses private, loopback and link-local addresses (checked on the resolved address
// it then connects to, so a DNS answer cannot switch it afterwards) unless the admin allows them, and
// it never follows a redirect from https to http.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace easel::net {

struct OutboundRequest {
    std::string method = "GET";
    std::string url;
    std::map<std::string, std::string> headers;
    std::string body;
    std::chrono::milliseconds timeout{15'000};  // the whole exchange, every redirect and DNS included
    // When set, also fail once no byte has moved for this long (downloads, whose total can be hours).
    std::chrono::milliseconds idleTimeout{0};
    // Set to true (from any thread) to abort the exchange; it then throws OutboundError.
    std::shared_ptr<const std::atomic<bool>> cancelled;
    std::uint64_t maxBody = 1u << 20;  // bytes of response body accepted
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
    enum class Kind { Failed, TimedOut, Cancelled, Busy };
    explicit OutboundError(const std::string& message, Kind kind = Kind::Failed)
        : std::runtime_error(message), m_kind(kind) {}
    Kind kind() const { return m_kind; }

private:
    Kind m_kind;
};

// Follows redirects (re-checking each address, never https -> http). Throws OutboundError with a
// message that can be shown; its kind() tells a deadline or a cancel from other failures.
OutboundResponse httpFetch(const OutboundRequest& request, const UrlPolicy& policy);

// True for loopback, private, link-local, unspecified and multicast addresses (IPv4 and IPv6).
bool isPrivateAddress(const std::string& address);

// Hex HMAC-SHA256 of `message` under `key`.
std::string hmacSha256Hex(std::string_view key, std::string_view message);

}  // namespace easel::net
