#include "net/http_client.h"

#include <sodium.h>

#include <algorithm>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

#include "net/aws_sigv4.h"

namespace easel::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct ParsedUrl {
    bool https = false;
    std::string host;
    std::string port;
    std::string target;
};

ParsedUrl parseUrl(const std::string& url) {
    ParsedUrl u;
    std::string rest;
    if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else if (url.rfind("https://", 0) == 0) {
        u.https = true;
        rest = url.substr(8);
    } else {
        throw OutboundError("only http:// and https:// URLs are accepted");
    }
    const auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    u.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (authority.find('@') != std::string::npos) throw OutboundError("URLs with credentials are not accepted");
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string::npos) throw OutboundError("malformed URL host");
        u.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':') u.port = authority.substr(close + 2);
    } else {
        const auto colon = authority.rfind(':');
        u.host = authority.substr(0, colon);
        if (colon != std::string::npos) u.port = authority.substr(colon + 1);
    }
    if (u.host.empty()) throw OutboundError("the URL has no host");
    if (u.port.empty()) u.port = u.https ? "443" : "80";
    if (u.port.find_first_not_of("0123456789") != std::string::npos) throw OutboundError("malformed URL port");
    if (u.target.find_first_of(" \r\n") != std::string::npos) throw OutboundError("malformed URL path");
    return u;
}

// The Host header (RFC 9110 7.2): the host as in the URL, and the port unless it is the scheme's default.
// Servers that route by name, and signatures over the host (S3 pre-signed links), need the port.
std::string hostHeader(const ParsedUrl& u) {
    const auto host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
    return u.port == (u.https ? "443" : "80") ? host : host + ":" + u.port;
}

std::string resolveRedirect(const ParsedUrl& from, const std::string& location) {
    if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
    const std::string origin = std::string(from.https ? "https://" : "http://") + from.host + ":" + from.port;
    if (!location.empty() && location.front() == '/') return origin + location;
    const auto dir = from.target.substr(0, from.target.rfind('/') + 1);
    return origin + dir + location;
}

// Status and lower-case header names of a parsed response.
template <typename Message>
void readStatusAndHeaders(const Message& message, OutboundResponse& out) {
    out.status = static_cast<int>(message.result_int());
    for (const auto& f : message) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[name] = std::string(f.value());
    }
}

// Runs one asynchronous operation at a time on a private io_context and waits for it, but never past
// the exchange's deadline, the idle timeout or a cancel: then `abort` closes the socket (or cancels
// the resolver) and the exchange fails. Beast's expires_at alone would not do: it covers only
// asynchronous operations, and the blocking calls this replaces could wait forever on a silent peer.
class Deadline {
public:
    Deadline(asio::io_context& io, const OutboundRequest& r, std::chrono::steady_clock::time_point deadline,
             std::string host)
        : m_io(io), m_request(r), m_deadline(deadline), m_host(std::move(host)) {}

    // `start(handler)` begins the operation; the handler is called with its error_code first.
    template <typename Start, typename Abort>
    void await(Start&& start, Abort&& abort) {
        bool done = false;
        beast::error_code result;
        start([&done, &result](beast::error_code ec, auto&&...) {
            result = ec;
            done = true;
        });
        auto idleEnd = m_request.idleTimeout.count() > 0 ? std::chrono::steady_clock::now() + m_request.idleTimeout
                                                         : std::chrono::steady_clock::time_point::max();
        while (!done) {
            const auto now = std::chrono::steady_clock::now();
            const bool cancelled = m_request.cancelled && m_request.cancelled->load();
            if (cancelled || now >= m_deadline || now >= idleEnd) {
                abort();
                m_io.restart();
                m_io.run_for(std::chrono::seconds(1));  // lets the aborted operation finish
                if (cancelled)
                    throw OutboundError("the request to " + m_host + " was cancelled", OutboundError::Kind::Cancelled);
                throw OutboundError(m_host + (now >= m_deadline ? " did not answer in time" : " stopped sending data"),
                                    OutboundError::Kind::TimedOut);
            }
            m_io.restart();
            m_io.run_for(std::min<std::chrono::steady_clock::duration>(
                {std::chrono::milliseconds(100), m_deadline - now, idleEnd - now}));
        }
        if (result) throw beast::system_error(result);
    }

private:
    asio::io_context& m_io;
    const OutboundRequest& m_request;
    std::chrono::steady_clock::time_point m_deadline;
    std::string m_host;
};

template <typename Stream>
OutboundResponse exchange(Stream& stream, beast::tcp_stream& tcpLayer, Deadline& deadline, const ParsedUrl& u,
                          const OutboundRequest& r) {
    auto close = [&] {
        beast::error_code ignored;
        tcpLayer.socket().close(ignored);
    };
    http::request<http::string_body> req;
    req.method(http::string_to_verb(r.method));
    if (req.method() == http::verb::unknown) throw OutboundError("unknown HTTP method " + r.method);
    req.target(u.target);
    req.version(11);
    req.set(http::field::host, hostHeader(u));
    req.set(http::field::user_agent, "Easel");
    for (const auto& [k, v] : r.headers) req.set(k, v);
    if (!r.body.empty() || r.method == "POST") {
        req.body() = r.body;
        req.prepare_payload();
    }
    deadline.await([&](auto handler) { http::async_write(stream, req, std::move(handler)); }, close);

    beast::flat_buffer buffer;
    OutboundResponse out;
    if (!r.sink) {
        http::response_parser<http::string_body> parser;
        parser.body_limit(r.maxBody);
        if (req.method() == http::verb::head) parser.skip(true);  // headers only, whatever Content-Length says
        deadline.await([&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); }, close);
        readStatusAndHeaders(parser.get(), out);
        out.body = std::move(parser.get().body());
        return out;
    }
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(r.maxBody);
    deadline.await([&](auto handler) { http::async_read_header(stream, buffer, parser, std::move(handler)); }, close);
    readStatusAndHeaders(parser.get(), out);
    if (r.onHeaders) r.onHeaders(out.status, out.headers);
    const bool deliver = out.status >= 200 && out.status < 300;
    std::vector<char> chunk(64 * 1024);
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        try {
            deadline.await([&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); }, close);
        } catch (const beast::system_error& e) {
            if (e.code() != http::error::need_buffer) throw;
        }
        const auto n = chunk.size() - parser.get().body().size;
        if (deliver && n > 0 && !r.sink(std::string_view(chunk.data(), n))) throw OutboundError("download aborted");
    }
    return out;
}

OutboundResponse fetchOnce(const ParsedUrl& u, const OutboundRequest& r, const UrlPolicy& policy,
                           std::chrono::steady_clock::time_point until) {
    asio::io_context io;
    Deadline deadline(io, r, until, u.host);
    tcp::resolver resolver(io);
    tcp::resolver::results_type results;
    try {
        deadline.await(
            [&](auto handler) {
                resolver.async_resolve(
                    u.host, u.port,
                    [&results, handler](beast::error_code ec, tcp::resolver::results_type found) mutable {
                        results = std::move(found);
                        handler(ec);
                    });
            },
            [&] { resolver.cancel(); });
    } catch (const beast::system_error& e) {
        throw OutboundError("cannot resolve " + u.host + ": " + e.code().message());
    }
    std::vector<tcp::endpoint> allowed;
    for (const auto& e : results) {
        if (policy.allowPrivateAddresses || !isPrivateAddress(e.endpoint().address().to_string())) {
            allowed.push_back(e.endpoint());
        }
    }
    if (allowed.empty()) {
        throw OutboundError(u.host + " resolves to a private or loopback address, which this server does not fetch");
    }
    try {
        beast::error_code ec;
        if (!u.https) {
            beast::tcp_stream stream(io);
            auto close = [&] { stream.socket().close(ec); };
            deadline.await([&](auto handler) { stream.async_connect(allowed, std::move(handler)); }, close);
            auto out = exchange(stream, stream, deadline, u, r);
            stream.socket().shutdown(tcp::socket::shutdown_both, ec);
            return out;
        }
        asio::ssl::context ctx(asio::ssl::context::tls_client);
        ctx.set_default_verify_paths();
        ctx.set_verify_mode(asio::ssl::verify_peer);
        beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
        if (!SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str())) throw OutboundError("TLS setup failed");
        stream.set_verify_callback(asio::ssl::host_name_verification(u.host));
        auto& tcpLayer = beast::get_lowest_layer(stream);
        auto close = [&] { tcpLayer.socket().close(ec); };
        deadline.await([&](auto handler) { tcpLayer.async_connect(allowed, std::move(handler)); }, close);
        deadline.await(
            [&](auto handler) { stream.async_handshake(asio::ssl::stream_base::client, std::move(handler)); }, close);
        auto out = exchange(stream, tcpLayer, deadline, u, r);
        tcpLayer.socket().close(ec);  // no TLS close_notify round trip: the answer is complete
        return out;
    } catch (const OutboundError&) {
        throw;
    } catch (const beast::system_error& e) {
        if (e.code() == http::error::body_limit) {
            throw OutboundError("the response from " + u.host + " is larger than " + std::to_string(r.maxBody) +
                                " bytes");
        }
        throw OutboundError("request to " + u.host + " failed: " + e.code().message());
    }
}

}  // namespace

bool isPrivateAddress(const std::string& text) {
    beast::error_code ec;
    auto a = asio::ip::make_address(text, ec);
    if (ec) return true;  // not an address: refuse
    if (a.is_v6()) {
        // IPv6 forms that carry an IPv4 address: check that address instead.
        const auto b = a.to_v6().to_bytes();
        const bool mapped = a.to_v6().is_v4_mapped();
        const bool compatible = std::all_of(b.begin(), b.begin() + 12, [](unsigned char x) { return x == 0; });
        const bool nat64 = b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b;  // 64:ff9b::/96
        if (mapped || (compatible && !a.to_v6().is_loopback() && !a.to_v6().is_unspecified()) || nat64) {
            return isPrivateAddress(std::to_string(b[12]) + "." + std::to_string(b[13]) + "." + std::to_string(b[14]) +
                                    "." + std::to_string(b[15]));
        }
        if (b[0] == 0x20 && b[1] == 0x02) {  // 6to4 2002:AABB:CCDD::/48
            return isPrivateAddress(std::to_string(b[2]) + "." + std::to_string(b[3]) + "." + std::to_string(b[4]) +
                                    "." + std::to_string(b[5]));
        }
        const auto v6 = a.to_v6();
        return v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || v6.is_site_local() ||
               v6.is_multicast() || (b[0] & 0xFE) == 0xFC;
    }
    const auto b = a.to_v4().to_bytes();
    return b[0] == 0 || b[0] == 10 || b[0] == 127 || (b[0] == 169 && b[1] == 254) ||
           (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168) ||
           (b[0] == 192 && b[1] == 0 && b[2] == 0) || (b[0] == 198 && (b[1] & 0xFE) == 18) ||
           (b[0] == 100 && (b[1] & 0xC0) == 64) || b[0] >= 224;
}

OutboundResponse httpFetch(const OutboundRequest& request, const UrlPolicy& policy) {
    // One deadline for the whole chain: a redirect loop of slow hops cannot stretch it.
    const auto until = std::chrono::steady_clock::now() + request.timeout;
    std::string url = request.url;
    for (int hop = 0;; ++hop) {
        const auto parsed = parseUrl(url);
        auto response = fetchOnce(parsed, request, policy, until);
        const bool redirect = response.status == 301 || response.status == 302 || response.status == 303 ||
                              response.status == 307 || response.status == 308;
        if (!redirect || !response.headers.contains("location")) return response;
        if (hop >= request.maxRedirects) {
            // The host only: a URL's path and query can carry a secret token (webhooks), and this text is logged.
            throw OutboundError(parsed.host + " redirected" +
                                (request.maxRedirects == 0
                                     ? std::string(", which is not followed here")
                                     : " more than " + std::to_string(request.maxRedirects) + " times"));
        }
        url = resolveRedirect(parsed, response.headers["location"]);
        if (parsed.https && url.rfind("https://", 0) != 0) {
            throw OutboundError(parsed.host + " redirected from https to plain http, which is not followed");
        }
    }
}

std::string hmacSha256Hex(std::string_view key, std::string_view message) {
    crypto_auth_hmacsha256_state state;
    unsigned char digest[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()), message.size());
    crypto_auth_hmacsha256_final(&state, digest);
    return hexLower(digest, sizeof digest);
}

}  // namespace easel::net
