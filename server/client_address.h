#pragma once
// Who a request comes from, for per-address limits: the TCP peer, or behind a reverse proxy that the
// operator trusts (--trusted-proxy CIDR), the address that proxy names in X-Forwarded-For. A client
// can write anything into that header, so it is read right to left and only as far as the hops are
// trusted proxies (nginx's real_ip_recursive). IPv6 clients are grouped by their /64, the block one
// subscriber usually gets: limits keyed by the full address would let one host rotate through 2^64.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easel::server {

class CidrBlock {
public:
    // "10.0.0.0/8", "2001:db8::/32", or a single address (a /32 or /128). nullopt when malformed.
    static std::optional<CidrBlock> parse(std::string_view text);
    // Whether the address (text form, IPv4 or IPv6; IPv4-mapped IPv6 counts as IPv4) is inside.
    bool contains(std::string_view address) const;
    std::string text() const;

private:
    bool m_v6 = false;
    unsigned char m_bytes[16] = {};
    int m_prefix = 0;
};

// A comma-separated list of blocks (the --trusted-proxy value). Throws std::invalid_argument naming
// the entry that does not parse.
std::vector<CidrBlock> parseCidrList(std::string_view list);

// The client's address: `peer` itself unless it is a trusted proxy; then the rightmost entry of
// X-Forwarded-For (all such headers, joined by commas) that is not a trusted proxy. A malformed
// entry ends the walk at the last trusted hop, which is then the client as far as anyone can tell.
std::string resolveClientAddress(const std::string& peer, std::string_view forwardedFor,
                                 const std::vector<CidrBlock>& trustedProxies);

// The key per-address limits count under: an IPv4 address as it is, an IPv6 address as its /64
// ("2001:db8:1:2::/64"), an IPv4-mapped IPv6 address as the IPv4 one. Anything else unchanged.
std::string addressGroup(std::string_view address);

}  // namespace easel::server
