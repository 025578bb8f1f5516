// The HTTP backend with its blobs in an S3 bucket (a throwaway s3rver on loopback) and image links
// answered by a redirect to a short-lived pre-signed URL: the bytes come from the bucket, the API's
// own link stays the one clients keep, and deleting the account empties its prefix. (The whole
// backend suite also runs with a bucket: CTest easel_backend_tests_on_s3.)

#include "backend_fixture.h"
#include "common/base64.h"
#include "net/http_client.h"
#include "noise_png.h"

namespace easel::testing {
namespace {

using json = nlohmann::json;

class PresignedLinks : public BackendTest {
protected:
    void SetUp() override {
        S3Server::exportCredentials();
        config.blobStore = S3Server::shared().freshUrl("&links=presigned&link_seconds=300");
        BackendTest::SetUp();
        const auto account = signup("s3@example.com");
        key = account["api_key"];
        userId = account["user_id"];
    }
    std::string key;
    std::int64_t userId = 0;
};

TEST_F(PresignedLinks, AnImageLinkRedirectsToTheBucketAndTheBytesAreTheImage) {
    const auto r = text2img(key, {{"prompt", "a blue square"}}).json();
    ASSERT_EQ(r["status"], "success") << r.dump();
    const std::string link = r["output"][0];
    const auto path = link.substr(link.find("/images/"));
    const auto answer = get(path);
    ASSERT_EQ(answer.status, 302) << answer.body;
    const auto location = answer.header("location");
    EXPECT_TRUE(location.starts_with(S3Server::shared().endpoint() + "/easel-test/")) << location;
    EXPECT_NE(location.find("X-Amz-Expires=300&"), std::string::npos) << location;
    EXPECT_EQ(answer.header("cache-control"), "private, no-store");

    net::OutboundRequest follow;
    follow.url = location;
    follow.maxBody = 8u << 20;
    const auto image = net::httpFetch(follow, net::UrlPolicy{true});
    ASSERT_EQ(image.status, 200);
    const auto stored = backend->generation().image(path.substr(8, path.size() - 12));
    ASSERT_TRUE(stored);
    EXPECT_EQ(image.body, std::string(stored->begin(), stored->end()));
    EXPECT_EQ(image.body.substr(1, 3), "PNG");

    EXPECT_EQ(get("/images/not-a-token.png").status, 404);  // unknown links still 404, never a redirect
}

TEST_F(PresignedLinks, Img2imgReadsItsUploadFromTheBucketAndDeletionEmptiesThePrefix) {
    const auto up = post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", encodeBase64(noisePng(64))}});
    ASSERT_EQ(up.status, 200) << up.body;
    const auto r = post("/api/v6/images/img2img",
                        {{"key", key}, {"prompt", "x"}, {"init_image", up.json()["link"]}, {"strength", 0.5}})
                       .json();
    ASSERT_EQ(r["status"], "success") << r.dump();
    EXPECT_EQ(blobs().count(userId), 2u);  // the upload and the image (the job's input copy is gone)

    const auto token = login("s3@example.com");
    const auto del = httpRequest(port, "DELETE", "/api/v1/account", json{{"password", "correct horse"}}.dump(),
                                 {{"Authorization", "Bearer " + token}});
    ASSERT_EQ(del.status, 200) << del.body;
    EXPECT_EQ(blobs().count(userId), 0u);
    const std::string link = r["output"][0];
    EXPECT_EQ(get(link.substr(link.find("/images/"))).status, 404);
}

}  // namespace
}  // namespace easel::testing
