// What one account can store (issue: "no account can fill the disk"): uploads spend the generation
// bucket, kept images and uploads count against the plan's storage cap (507 past it), and a nearly
// full disk refuses new work with 503 instead of failing half-way. Refused requests cost nothing.

#include "backend_fixture.h"
#include "common/base64.h"
#include "noise_png.h"
#include "storage/job_repository.h"
#include "test_database.h"

namespace easel::testing {
namespace {

class StorageLimits : public BackendTest {
protected:
    void SetUp() override {
        BackendTest::SetUp();
        const auto account = signup("free@example.com");
        key = account["api_key"];
        userId = account["user_id"];
    }
    // Bytes this account already keeps, as if from earlier uploads (the rows are what the cap counts).
    void alreadyStored(std::int64_t bytes, std::int64_t forSeconds = 24 * 3600) {
        storage::JobRepository(backend->db())
            .insertUpload(userId, "upload-earlier-" + std::to_string(++m_rows), clock.nowSeconds(),
                          clock.nowSeconds() + forSeconds, bytes);
    }
    HttpResult upload() {
        return post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", encodeBase64(noisePng(64))}});
    }
    std::int64_t imagesUsed() { return testing::imagesUsed(backend->db(), userId); }

    std::string key;
    std::int64_t userId = 0;

private:
    int m_rows = 0;
};

TEST_F(StorageLimits, UploadsSpendTheGenerationBucket) {
    for (int i = 0; i < 10; ++i) ASSERT_EQ(upload().status, 200) << i;  // the free plan: 10 a minute
    const auto r = upload();
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(text2img(key).status, 429);  // the same bucket
    nextMinute();
    EXPECT_EQ(upload().status, 200);
}

TEST_F(StorageLimits, ThePlansStorageCapRefusesUploadsAndGenerationsWith507) {
    alreadyStored((100ll << 20) - 1000);  // the free plan keeps 100 MB; 1000 bytes are left
    const auto r = upload();              // 64x64 of noise, ~12 KB: more than what is left
    ASSERT_EQ(r.status, 507) << r.body;
    EXPECT_NE(r.json().value("message", "").find("free plan keeps at most 100 MB"), std::string::npos) << r.body;
    const auto g = text2img(key, {{"width", 64}, {"height", 64}});
    ASSERT_EQ(g.status, 507) << g.body;
    EXPECT_EQ(imagesUsed(), 0);  // nothing charged

    // Once the earlier uploads expire there is room again.
    clock.advance(25 * 3600);
    nextMinute();
    EXPECT_EQ(upload().status, 200);
    EXPECT_EQ(text2img(key, {{"width", 64}, {"height", 64}}).status, 200);
    EXPECT_EQ(imagesUsed(), 1);
}

TEST_F(StorageLimits, KeptImagesCountToo) {
    alreadyStored((100ll << 20) - (64 * 64 * 3 / 2) - 10);  // room for exactly one 64x64 image
    const auto first = text2img(key, {{"width", 64}, {"height", 64}});
    ASSERT_EQ(first.status, 200) << first.body;
    // Its PNG is now kept and counted, so the next one does not fit.
    const auto second = text2img(key, {{"width", 64}, {"height", 64}});
    EXPECT_EQ(second.status, 507) << second.body;
    EXPECT_EQ(imagesUsed(), 1);
}

class NearlyFullDisk : public StorageLimits {
protected:
    void SetUp() override {
        config.generation.minFreeDiskBytes = 1ull << 60;  // more than any disk has free
        StorageLimits::SetUp();
    }
};

TEST_F(NearlyFullDisk, NewWorkIsRefusedWith503BeforeAnythingIsWritten) {
    if (testsUseS3()) GTEST_SKIP() << "about the data dir's disk; a bucket has no free space to read";
    const auto u = upload();
    ASSERT_EQ(u.status, 503) << u.body;
    EXPECT_NE(u.body.find("disk is nearly full"), std::string::npos) << u.body;
    EXPECT_FALSE(u.header("retry-after").empty());
    const auto g = text2img(key);
    EXPECT_EQ(g.status, 503) << g.body;
    EXPECT_EQ(imagesUsed(), 0);
    EXPECT_EQ(get("/health").status, 200);  // reads still work
}

}  // namespace
}  // namespace easel::testing
