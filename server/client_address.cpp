#include "server/client_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "common/text.h"

namespace easel::server {
namespace {

struct Parsed {
    bool v6 = false;
    std::array<unsigned char, 16> bytes{};
};

// An IPv4 or IPv6 address in text form; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes the IPv4 address,
// so that one client is one client whichever way the socket reports it. Brackets ("[::1]") are
// accepted, as some proxies write them.
std::optional<Parsed> parseAddress(std::string_view text) {
    text = trimBlanks(text);
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    if (text.empty() || text.size() > 45) return std::nullopt;
    const std::string s(text);
    Parsed p;
    if (::inet_pton(AF_INET, s.c_str(), p.bytes.data()) == 1) return p;
    if (::inet_pton(AF_INET6, s.c_str(), p.bytes.data()) != 1) return std::nullopt;
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(p.bytes.data(), kMapped, sizeof kMapped) == 0) {
        std::array<unsigned char, 16> v4{};
        std::copy_n(p.bytes.begin() + 12, 4, v4.begin());
        p.bytes = v4;
        return p;
    }
    p.v6 = true;
    return p;
}

std::string format(const Parsed& p) {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(p.v6 ? AF_INET6 : AF_INET, p.bytes.data(), buf, sizeof buf);
    return buf;
}

bool samePrefix(const unsigned char* a, const unsigned char* b, int bits) {
    const int whole = bits / 8;
    if (std::memcmp(a, b, static_cast<std::size_t>(whole)) != 0) return false;
    const int rest = bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

std::optional<CidrBlock> CidrBlock::parse(std::string_view text) {
    text = trimBlanks(text);
    const auto slash = text.find('/');
    const auto address = parseAddress(text.substr(0, slash));
    if (!address) return std::nullopt;
    const int maxPrefix = address->v6 ? 128 : 32;
    int prefix = maxPrefix;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3 ||
            !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return std::nullopt;
        }
        prefix = std::stoi(std::string(digits));
        if (prefix > maxPrefix) return std::nullopt;
    }
    CidrBlock block;
    block.m_v6 = address->v6;
    std::copy(address->bytes.begin(), address->bytes.end(), block.m_bytes);
    block.m_prefix = prefix;
    return block;
}

bool CidrBlock::contains(std::string_view address) const {
    const auto a = parseAddress(address);
    return a && a->v6 == m_v6 && samePrefix(a->bytes.data(), m_bytes, m_prefix);
}

std::string CidrBlock::text() const {
    Parsed p;
    p.v6 = m_v6;
    std::copy(std::begin(m_bytes), std::end(m_bytes), p.bytes.begin());
    return format(p) + "/" + std::to_string(m_prefix);
}

std::vector<CidrBlock> parseCidrList(std::string_view list) {
    std::vector<CidrBlock> out;
    for (const auto piece : splitOn(list, ',')) {
        const auto entry = trimBlanks(piece);
        if (entry.empty()) continue;
        const auto block = CidrBlock::parse(entry);
        if (!block) {
            throw std::invalid_argument("'" + std::string(entry) +
                                        "' is not an address block (write e.g. 10.0.0.0/8 or 2001:db8::/32)");
        }
        out.push_back(*block);
    }
    return out;
}

std::string resolveClientAddress(const std::string& peer, std::string_view forwardedFor,
                                 const std::vector<CidrBlock>& trustedProxies) {
    const auto trusted = [&](std::string_view address) {
        return std::any_of(trustedProxies.begin(), trustedProxies.end(),
                           [&](const CidrBlock& b) { return b.contains(address); });
    };
    if (trustedProxies.empty() || !trusted(peer)) return peer;
    std::string client = peer;
    while (!forwardedFor.empty()) {
        const auto comma = forwardedFor.rfind(',');
        const auto entry = trimBlanks(comma == std::string_view::npos ? forwardedFor : forwardedFor.substr(comma + 1));
        forwardedFor = comma == std::string_view::npos ? std::string_view() : forwardedFor.substr(0, comma);
        const auto parsed = parseAddress(entry);
        if (!parsed) break;  // garbage: the last trusted hop is all that is known
        client = format(*parsed);
        if (!trusted(client)) break;
    }
    return client;
}

std::string addressGroup(std::string_view address) {
    const auto p = parseAddress(address);
    if (!p) return std::string(address);
    if (!p->v6) return format(*p);
    Parsed prefix = *p;
    std::fill(prefix.bytes.begin() + 8, prefix.bytes.end(), 0);
    return format(prefix) + "/64";
}

}  // namespace easel::server
