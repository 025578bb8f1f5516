// The S3 blob store against a real S3-compatible server (s3rver on loopback, tests/support/s3_server.h):
// round trips, listings per owner, multipart uploads of large blobs, pre-signed links that work
// without a key (and refused once altered or expired), requests signed with a wrong key refused, and clear
// errors for a missing bucket, an unreachable endpoint and bad URLs.

#include "storage/s3_blob_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <stdexcept>

#include "child_process.h"
#include "net/aws_sigv4.h"
#include "net/http_client.h"
#include "s3_server.h"

namespace easel::storage {
namespace {

using Bytes = std::vector<unsigned char>;

Bytes randomBytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    Bytes out(n);
    for (auto& b : out) b = static_cast<unsigned char>(rng());
    return out;
}

std::vector<std::string> names(const BlobStore& store, std::int64_t owner) {
    std::vector<std::string> out;
    for (const auto& b : store.list(owner)) out.push_back(b.name);
    std::sort(out.begin(), out.end());
    return out;
}

TEST(S3BlobStore, BlobsRoundTripPerOwnerAndGoWithTheirOwner) {
    S3BlobStore store(testing::S3Server::shared().freshSettings());
    const auto a = randomBytes(3000, 1);
    const auto b = randomBytes(10, 2);
    store.put(7, "img-a.png", a);
    store.put(7, "upload-b", b);
    store.put(9, "img-c.png", a);
    store.put(7, "empty", {});

    EXPECT_EQ(store.get(7, "img-a.png"), a);
    EXPECT_EQ(store.get(7, "upload-b"), b);
    EXPECT_EQ(store.get(7, "empty"), Bytes{});
    EXPECT_EQ(store.get(9, "img-a.png"), std::nullopt);  // another owner's prefix
    EXPECT_EQ(store.count(7), 3u);
    EXPECT_EQ(names(store, 7), (std::vector<std::string>{"empty", "img-a.png", "upload-b"}));
    for (const auto& blob : store.list(7)) {
        EXPECT_GE(blob.ageSeconds, 0);
        EXPECT_LE(blob.ageSeconds, 120);
    }
    auto owners = store.owners();
    std::sort(owners.begin(), owners.end());
    EXPECT_EQ(owners, (std::vector<std::int64_t>{7, 9}));

    store.put(7, "upload-b", a);  // overwrite
    EXPECT_EQ(store.get(7, "upload-b"), a);
    store.remove(7, "upload-b");
    EXPECT_EQ(store.get(7, "upload-b"), std::nullopt);
    store.remove(7, "upload-b");  // removing what is gone is not an error

    store.removeOwner(7);
    EXPECT_EQ(store.count(7), 0u);
    EXPECT_EQ(store.owners(), (std::vector<std::int64_t>{9}));
    EXPECT_EQ(store.get(9, "img-c.png"), a);
    EXPECT_EQ(store.counters().failures, 0u);
}

TEST(S3BlobStore, ListingsFollowContinuationPages) {
    S3BlobStore store(testing::S3Server::shared().freshSettings());
    // S3 (and s3rver) pages at 1000 keys: 1003 blobs take two pages.
    for (int i = 0; i < 1003; ++i) store.put(5, "b" + std::to_string(i), {static_cast<unsigned char>(i)});
    EXPECT_EQ(store.count(5), 1003u);
    store.removeOwner(5);
    EXPECT_EQ(store.count(5), 0u);
}

TEST(S3BlobStore, ALargeBlobGoesUpAsAMultipartUpload) {
    auto settings = testing::S3Server::shared().freshSettings();
    settings.partBytes = 64 * 1024;
    S3BlobStore store(settings);
    const auto big = randomBytes(200 * 1024 + 17, 3);  // 4 parts, the last one short
    const auto before = store.counters();
    store.put(3, "model.safetensors", big);
    const auto after = store.counters();
    EXPECT_EQ(after.multipartUploads - before.multipartUploads, 1u);
    EXPECT_EQ(after.requests - before.requests, 6u);  // create, 4 parts, complete
    EXPECT_EQ(store.get(3, "model.safetensors"), big);
    EXPECT_EQ(names(store, 3), std::vector<std::string>{"model.safetensors"});

    const auto small = randomBytes(64 * 1024, 4);  // exactly one part's size: a plain PUT
    store.put(3, "small", small);
    EXPECT_EQ(store.counters().multipartUploads, after.multipartUploads);
    EXPECT_EQ(store.get(3, "small"), small);
}

TEST(S3BlobStore, KeysWithBlanksAndPlusSignsInThePrefixRoundTrip) {
    auto settings = testing::S3Server::shared().freshSettings();
    settings.prefix += "my images+more/";
    S3BlobStore store(settings);
    store.put(11, "a+b c.png", {1, 2, 3});
    EXPECT_EQ(store.get(11, "a+b c.png"), (Bytes{1, 2, 3}));
    EXPECT_EQ(names(store, 11), std::vector<std::string>{"a+b c.png"});
    EXPECT_EQ(store.owners(), std::vector<std::int64_t>{11});
}

TEST(S3BlobStore, APresignedLinkServesTheBlobWithoutAKey) {
    auto settings = testing::S3Server::shared().freshSettings();
    S3BlobStore proxied(settings);
    EXPECT_FALSE(proxied.hasDirectLinks());
    EXPECT_EQ(proxied.directLink(1, "x.png"), std::nullopt);

    settings.presignedLinks = true;
    settings.linkSeconds = 900;
    const auto now = static_cast<std::int64_t>(std::time(nullptr));  // s3rver refuses a skewed clock
    S3BlobStore store(settings, [&] { return now; });
    EXPECT_TRUE(store.hasDirectLinks());
    const auto png = randomBytes(500, 5);
    store.put(4, "img.png", png);
    const auto link = store.directLink(4, "img.png");
    ASSERT_TRUE(link);
    EXPECT_TRUE(link->starts_with(testing::S3Server::shared().endpoint() + "/easel-test/" + settings.prefix +
                                  "4/img.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&"))
        << *link;
    EXPECT_NE(link->find("X-Amz-Date=" + net::amzDate(now) + "&X-Amz-Expires=900&"), std::string::npos) << *link;
    EXPECT_NE(link->find("&X-Amz-Signature="), std::string::npos) << *link;
    EXPECT_EQ(link->find(testing::S3Server::kSecretKey, link->find("X-Amz-Signature")), std::string::npos);

    net::OutboundRequest get;  // no Authorization header: the link alone
    get.url = *link;
    get.maxBody = 1 << 20;
    const auto resp = net::httpFetch(get, net::UrlPolicy{true});
    ASSERT_EQ(resp.status, 200) << resp.body;
    EXPECT_EQ(Bytes(resp.body.begin(), resp.body.end()), png);
    EXPECT_EQ(resp.headers.at("content-type"), "image/png");
}

// The test server checks SigV4 as S3 does (tests/support/s3rver/sigv4-check.js): what it accepts above
// is signed right, and a wrong key, an altered or an expired link are refused.
TEST(S3BlobStore, TheServerRefusesAWrongSecretAnAlteredLinkAndAnExpiredOne) {
    auto settings = testing::S3Server::shared().freshSettings();
    settings.secretKey = "not-the-secret";
    try {
        S3BlobStore store(settings);
        FAIL() << "a request signed with the wrong secret was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("was denied: check AWS_ACCESS_KEY_ID"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("not-the-secret"), std::string::npos) << "the secret leaked: " << e.what();
    }

    settings = testing::S3Server::shared().freshSettings();
    settings.presignedLinks = true;
    settings.linkSeconds = 900;
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    S3BlobStore store(settings, [&] { return now; });
    store.put(4, "img.png", {1, 2, 3});
    auto fetch = [](const std::string& url) {
        net::OutboundRequest get;
        get.url = url;
        get.maxBody = 1 << 20;
        return net::httpFetch(get, net::UrlPolicy{true});
    };
    auto link = *store.directLink(4, "img.png");
    EXPECT_EQ(fetch(link).status, 200);
    auto altered = link;
    altered.replace(altered.find("X-Amz-Expires=900"), 17, "X-Amz-Expires=901");
    const auto refused = fetch(altered);
    EXPECT_EQ(refused.status, 403);
    EXPECT_NE(refused.body.find("SignatureDoesNotMatch"), std::string::npos) << refused.body;
    now -= 901;  // signed 901 s ago, valid for 900
    const auto expired = fetch(*store.directLink(4, "img.png"));
    EXPECT_EQ(expired.status, 403);
    EXPECT_NE(expired.body.find("expired"), std::string::npos) << expired.body;
}

TEST(S3BlobStore, AMissingBucketOrADeadEndpointIsAClearError) {
    auto settings = testing::S3Server::shared().freshSettings();
    settings.bucket = "no-such-bucket";
    try {
        S3BlobStore store(settings);
        FAIL() << "a missing bucket was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("the bucket no-such-bucket does not exist at http://127.0.0.1:"),
                  std::string::npos)
            << e.what();
    }
    settings = testing::S3Server::shared().freshSettings();
    settings.endpoint = "http://127.0.0.1:" + std::to_string(testing::freeLoopbackPort());
    settings.timeout = std::chrono::seconds(3);
    try {
        S3BlobStore store(settings);
        FAIL() << "an endpoint where nothing listens was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("S3 HEAD"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("S3RVER"), std::string::npos) << "the key leaked: " << e.what();
    }
}

TEST(S3BlobStore, NamesThatCouldLeaveTheOwnersPrefixAreRefused) {
    S3BlobStore store(testing::S3Server::shared().freshSettings());
    EXPECT_THROW(store.put(1, "../2/x", {1}), std::invalid_argument);
    EXPECT_THROW(store.put(1, "a/b", {1}), std::invalid_argument);
    EXPECT_THROW(store.get(1, ".hidden"), std::invalid_argument);
    EXPECT_THROW(store.put(1, "", {1}), std::invalid_argument);
}

// --- The --blob-store URL --------------------------------------------------------------------------

const char* testEnv(const char* name) {
    static const std::map<std::string, std::string> env{{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"}};
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
}

TEST(S3Url, EverySettingIsRead) {
    EXPECT_TRUE(isS3Url("s3://b"));
    EXPECT_FALSE(isS3Url("/srv/easel/files"));
    const auto s = parseS3Url(
        "s3://my-bucket/easel/images?endpoint=http://10.0.0.5:9000/&region=eu-central-1&style=path&links=presigned"
        "&link_seconds=600&part_mb=8&timeout_seconds=30",
        testEnv);
    EXPECT_EQ(s.bucket, "my-bucket");
    EXPECT_EQ(s.prefix, "easel/images/");
    EXPECT_EQ(s.endpoint, "http://10.0.0.5:9000");
    EXPECT_EQ(s.region, "eu-central-1");
    EXPECT_TRUE(s.pathStyle);
    EXPECT_TRUE(s.presignedLinks);
    EXPECT_EQ(s.linkSeconds, 600);
    EXPECT_EQ(s.partBytes, 8u << 20);
    EXPECT_EQ(s.timeout, std::chrono::seconds(30));
    EXPECT_EQ(s.accessKey, "AK");
    EXPECT_EQ(s.secretKey, "SK");
    EXPECT_EQ(describeS3(s).find("SK"), std::string::npos);
}

TEST(S3Url, WithoutAnEndpointItIsAwsWithVirtualHostedBuckets) {
    const auto s = parseS3Url("s3://easel-images?region=us-west-2", testEnv);
    EXPECT_EQ(s.endpoint, "https://s3.us-west-2.amazonaws.com");
    EXPECT_FALSE(s.pathStyle);
    EXPECT_EQ(s.prefix, "");
    EXPECT_FALSE(s.presignedLinks);
    EXPECT_EQ(s.partBytes, 16u << 20);
}

TEST(S3Url, MistakesAreNamed) {
    auto message = [](const std::string& url, const std::function<const char*(const char*)>& env = testEnv) {
        try {
            parseS3Url(url, env);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_NE(message("s3://B").find("bucket name 'B' is not valid"), std::string::npos);
    EXPECT_NE(message("s3://bucket?endpoit=http://x").find("unknown blob store setting 'endpoit'"), std::string::npos);
    EXPECT_NE(message("s3://bucket?endpoint=ftp://x").find("endpoint must be"), std::string::npos);
    EXPECT_NE(message("s3://bucket?endpoint=http://x/path").find("endpoint must be"), std::string::npos);
    EXPECT_NE(message("s3://bucket?link_seconds=604801").find("link_seconds must be"), std::string::npos);
    EXPECT_NE(message("s3://bucket?part_mb=1").find("part_mb must be"), std::string::npos);
    EXPECT_NE(message("s3://bucket?style=dns").find("style must be path or virtual"), std::string::npos);
    EXPECT_NE(message("s3://key:secret@bucket").find("not in the URL"), std::string::npos);
    EXPECT_NE(message("s3://bucket", [](const char*) -> const char* { return nullptr; }).find("AWS_ACCESS_KEY_ID"),
              std::string::npos);
}

}  // namespace
}  // namespace easel::storage
