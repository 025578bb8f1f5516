// Address blocks, the client behind trusted proxies, and the per-address grouping (IPv6 by /64).

#include "server/client_address.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace easel::server {
namespace {

TEST(CidrBlockTest, ContainsExactlyItsPrefix) {
    const auto v4 = CidrBlock::parse("10.1.0.0/16").value();
    EXPECT_TRUE(v4.contains("10.1.255.3"));
    EXPECT_FALSE(v4.contains("10.2.0.1"));
    EXPECT_TRUE(v4.contains("::ffff:10.1.2.3"));  // the same host, as a dual-stack socket reports it
    EXPECT_FALSE(v4.contains("2001:db8::1"));
    const auto odd = CidrBlock::parse("192.168.1.128/25").value();
    EXPECT_TRUE(odd.contains("192.168.1.200"));
    EXPECT_FALSE(odd.contains("192.168.1.127"));
    const auto v6 = CidrBlock::parse("2001:db8::/32").value();
    EXPECT_TRUE(v6.contains("2001:db8:ffff::1"));
    EXPECT_FALSE(v6.contains("2001:db9::1"));
    EXPECT_FALSE(v6.contains("10.0.0.1"));
    const auto single = CidrBlock::parse("127.0.0.1").value();
    EXPECT_EQ(single.text(), "127.0.0.1/32");
    EXPECT_FALSE(single.contains("127.0.0.2"));
    EXPECT_TRUE(CidrBlock::parse("0.0.0.0/0").value().contains("8.8.8.8"));
}

TEST(CidrBlockTest, MalformedBlocksAreRefused) {
    for (const char* bad :
         {"", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/-1", "host/8", "1.2.3.4/8x"}) {
        EXPECT_FALSE(CidrBlock::parse(bad).has_value()) << bad;
    }
    EXPECT_EQ(parseCidrList(" 10.0.0.0/8 ,, fd00::/8 ").size(), 2u);
    try {
        parseCidrList("10.0.0.0/8,nonsense");
        FAIL() << "no error";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("'nonsense'"), std::string::npos) << e.what();
    }
}

TEST(ClientAddressTest, ForwardedForIsReadRightToLeftThroughTrustedHopsOnly) {
    const auto trusted = parseCidrList("10.0.0.0/8,fd00::/8");
    EXPECT_EQ(resolveClientAddress("198.51.100.4", "1.2.3.4", trusted), "198.51.100.4");  // not a proxy
    EXPECT_EQ(resolveClientAddress("10.0.0.2", "1.2.3.4", trusted), "1.2.3.4");
    EXPECT_EQ(resolveClientAddress("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.9.9.9", trusted), "1.2.3.4");
    EXPECT_EQ(resolveClientAddress("10.0.0.2", "", trusted), "10.0.0.2");
    EXPECT_EQ(resolveClientAddress("10.0.0.2", "10.0.0.3", trusted), "10.0.0.3");  // only proxies: the first
    EXPECT_EQ(resolveClientAddress("10.0.0.2", "1.2.3.4, junk", trusted), "10.0.0.2");
    EXPECT_EQ(resolveClientAddress("fd00::1", "[2001:db8::7]", trusted), "2001:db8::7");
    EXPECT_EQ(resolveClientAddress("10.0.0.2", "::ffff:1.2.3.4", trusted), "1.2.3.4");
    EXPECT_EQ(resolveClientAddress("10.0.0.2", "1.2.3.4", {}), "10.0.0.2");  // no proxy trusted
}

TEST(ClientAddressTest, IPv6IsGroupedByItsSlash64) {
    EXPECT_EQ(addressGroup("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    EXPECT_EQ(addressGroup("2001:db8:1:2:ffff:ffff:ffff:ffff"), addressGroup("2001:db8:1:2::9"));
    EXPECT_NE(addressGroup("2001:db8:1:3::1"), addressGroup("2001:db8:1:2::1"));
    EXPECT_EQ(addressGroup("203.0.113.9"), "203.0.113.9");
    EXPECT_EQ(addressGroup("::ffff:203.0.113.9"), "203.0.113.9");
    EXPECT_EQ(addressGroup("?"), "?");
}

}  // namespace
}  // namespace easel::server
