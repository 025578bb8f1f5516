// Submitting, fetching and cancelling generation jobs for a caller: validation against the model and
// the plan, the queue cap, the quota charge, idempotent retries, and what another account may see.

#include "service/generation_service.h"

#include <gtest/gtest.h>

#include "accounts/plans.h"
#include "fake_clock.h"
#include "fake_generator.h"
#include "full_disk_blob_store.h"
#include "noise_png.h"
#include "service_error_of.h"
#include "storage/user_repository.h"
#include "test_database.h"

namespace easel::service {
namespace {

using namespace std::chrono_literals;
using storage::JobStatus;
using testing::imagesUsed;

using testing::errorOf;

class GenerationServiceTest : public ::testing::Test {
protected:
    void SetUp() override { runner.start(); }
    void TearDown() override {
        generator.release();
        runner.stop();
    }

    accounts::Caller caller(const std::string& email, const std::string& plan = "free", std::int64_t used = 0) {
        return {testing::addUser(db, email, plan, used), email, accounts::findPlan(plan), false};
    }
    static SubmitRequest request(const std::string& prompt, int samples = 1, bool instant = false) {
        SubmitRequest r;
        r.params.prompt = prompt;
        r.params.samples = samples;
        r.instant = instant;
        return r;
    }

    testing::TestDatabase database;
    const storage::Database& db = database.db();
    storage::FileBlobStore blobs{database.dir() / "files"};
    FakeClock clock;
    testing::FakeGenerator generator;
    jobs::JobRunner runner{db, blobs, generator, clock, {}, [](std::int64_t) { return 1; }};
    GenerationService service{db, blobs, runner, generator, clock, [] {
                                  GenerationOptions o;
                                  o.syncWait = 10s;
                                  return o;
                              }()};
    accounts::Caller ada = caller("ada@example.com");
};

TEST_F(GenerationServiceTest, ASubmittedJobIsChargedRunAndAnsweredWithItsImages) {
    const auto view = service.submit(ada, request("a red circle", 2));
    EXPECT_EQ(view.job.status, JobStatus::Succeeded);
    EXPECT_EQ(view.job.images, 2);
    EXPECT_EQ(imagesUsed(db, ada.userId), 2);
    ASSERT_EQ(view.images.size(), 2u);
    EXPECT_EQ(view.images[0].token, view.params.imageTokens[0]);
    // The model's defaults fill what the request left open.
    EXPECT_EQ(view.params.modelId, "fake-model");
    EXPECT_EQ(view.params.width, 64);
    EXPECT_EQ(view.params.steps, 4);
    EXPECT_DOUBLE_EQ(view.params.guidance, 5.0);
    ASSERT_TRUE(view.params.seed);
    const auto png = service.image(view.images[1].token);
    ASSERT_TRUE(png);
    EXPECT_EQ(inference::decodeImage(*png).height, 64);
}

TEST_F(GenerationServiceTest, AnInstantSubmitAnswersAtOnceWithTheFutureImageNames) {
    generator.block();
    const auto view = service.submit(ada, request("later", 3, true));
    EXPECT_TRUE(view.job.status == JobStatus::Queued || view.job.status == JobStatus::Running);
    EXPECT_EQ(view.params.imageTokens.size(), 3u);
    EXPECT_TRUE(view.images.empty());
    generator.release();
    ASSERT_TRUE(runner.waitFinished(view.job.id, 10s));
    const auto done = service.fetch(ada, view.job.id);
    ASSERT_EQ(done.images.size(), 3u);
    EXPECT_EQ(done.images[2].token, view.params.imageTokens[2]);
}

TEST_F(GenerationServiceTest, OverTheQuotaIsPaymentRequiredAndChargesNothing) {
    const auto nearlyOut = caller("spent@example.com", "free", 19);  // the free plan has 20
    const auto e = errorOf([&] { service.submit(nearlyOut, request("two more", 2)); });
    EXPECT_EQ(e.code(), ErrorCode::PaymentRequired);
    EXPECT_NE(std::string(e.what()).find("19 used, 2 requested"), std::string::npos) << e.what();
    EXPECT_EQ(imagesUsed(db, nearlyOut.userId), 19);
    EXPECT_EQ(service.historyTotal(nearlyOut), 0);
    EXPECT_EQ(service.submit(nearlyOut, request("the last one", 1)).job.status, JobStatus::Succeeded);
    EXPECT_EQ(imagesUsed(db, nearlyOut.userId), 20);
}

TEST_F(GenerationServiceTest, BeyondThePlansQueueTheRequestIsTooManyWithARetryTime) {
    generator.block();
    for (int i = 0; i < accounts::findPlan("free")->maxQueued; ++i) service.submit(ada, request("queued", 1, true));
    const auto e = errorOf([&] { service.submit(ada, request("one too many", 1, true)); });
    EXPECT_EQ(e.code(), ErrorCode::TooManyRequests);
    ASSERT_TRUE(e.retryAfterSeconds);
    EXPECT_GE(*e.retryAfterSeconds, 1);
    EXPECT_EQ(imagesUsed(db, ada.userId), 2);
}

TEST_F(GenerationServiceTest, InvalidParametersNameTheirFieldsAndChargeNothing) {
    auto r = request("   ", 5);
    r.params.width = 65;
    r.params.guidance = 30;
    r.params.scheduler = "NoSuchScheduler";
    r.params.kind = "img2img";  // without an init image
    const auto e = errorOf([&] { service.submit(ada, r); });
    EXPECT_EQ(e.code(), ErrorCode::BadRequest);
    for (const auto* field : {"prompt", "width", "samples", "guidance_scale", "scheduler", "init_image"}) {
        EXPECT_TRUE(e.fieldErrors.contains(field)) << field;
    }
    EXPECT_FALSE(e.fieldErrors.contains("height"));
    EXPECT_EQ(imagesUsed(db, ada.userId), 0);
    EXPECT_EQ(service.historyTotal(ada), 0);
}

TEST_F(GenerationServiceTest, AnUnknownModelIsABadRequestNamingTheModel) {
    auto r = request("x");
    r.params.modelId = "sdxl";
    const auto e = errorOf([&] { service.submit(ada, r); });
    EXPECT_EQ(e.code(), ErrorCode::BadRequest);
    EXPECT_TRUE(e.fieldErrors.contains("model_id"));
}

TEST_F(GenerationServiceTest, StepsAreCappedAtThePlansMaximum) {
    auto r = request("long");
    r.params.steps = 500;
    const auto view = service.submit(ada, r);
    EXPECT_EQ(view.params.steps, accounts::findPlan("free")->maxSteps);
}

TEST_F(GenerationServiceTest, CancellingAQueuedJobRefundsItAndASecondCancelIsAConflict) {
    const auto premium = caller("rich@example.com", "premium");
    generator.block();
    service.submit(premium, request("blocker", 1, true));  // holds the only slot of its account
    const auto waiting = service.submit(premium, request("waits", 2, true));
    ASSERT_EQ(service.fetch(premium, waiting.job.id).job.status, JobStatus::Queued);
    service.cancel(premium, waiting.job.id);
    EXPECT_EQ(service.fetch(premium, waiting.job.id).job.status, JobStatus::Cancelled);
    EXPECT_EQ(imagesUsed(db, premium.userId), 1);
    EXPECT_EQ(errorOf([&] { service.cancel(premium, waiting.job.id); }).code(), ErrorCode::Conflict);
}

TEST_F(GenerationServiceTest, AnotherAccountsJobIsNotFoundRatherThanForbidden) {
    const auto view = service.submit(ada, request("mine"));
    const auto bob = caller("bob@example.com");
    EXPECT_EQ(errorOf([&] { service.fetch(bob, view.job.id); }).code(), ErrorCode::NotFound);
    EXPECT_EQ(errorOf([&] { service.cancel(bob, view.job.id); }).code(), ErrorCode::NotFound);
    EXPECT_EQ(errorOf([&] { service.remove(bob, view.job.id); }).code(), ErrorCode::NotFound);
    EXPECT_EQ(errorOf([&] { service.fetch(ada, view.job.id + 1000); }).code(), ErrorCode::NotFound);
    EXPECT_TRUE(service.history(bob, 10, 0).empty());
}

TEST_F(GenerationServiceTest, ARetryWithTheSameIdempotencyKeyGetsTheFirstJobWithoutASecondCharge) {
    auto r = request("once", 2);
    r.idempotencyKey = "client-retry-1";
    const auto first = service.submit(ada, r);
    const auto again = service.submit(ada, r);
    EXPECT_EQ(again.job.id, first.job.id);
    EXPECT_EQ(imagesUsed(db, ada.userId), 2);
    EXPECT_EQ(service.historyTotal(ada), 1);
}

TEST_F(GenerationServiceTest, AQueuedJobReportsItsPlaceAndAnEstimate) {
    const auto premium = caller("rich@example.com", "premium");
    const auto basic = caller("basic@example.com", "basic");
    generator.block();
    service.submit(premium, request("running", 1, true));
    ASSERT_TRUE(generator.waitStarted(1));
    const auto ahead = service.submit(premium, request("ahead", 2, true));  // higher plan: runs first
    const auto mine = service.submit(basic, request("mine", 1, true));
    const auto view = service.fetch(basic, mine.job.id);
    EXPECT_EQ(view.queuePosition, 1);
    // One image running, two ahead, then its own: four images at the runner's pace.
    EXPECT_DOUBLE_EQ(view.etaSeconds, 4 * runner.secondsPerImage());
    EXPECT_EQ(service.fetch(premium, ahead.job.id).queuePosition, 0);
    EXPECT_EQ(service.queueLength(), 2);
}

TEST_F(GenerationServiceTest, AFinishedJobCanBeRemovedWithItsImagesButARunningOneCannot) {
    const auto done = service.submit(ada, request("done"));
    const auto token = done.images.at(0).token;
    generator.block();
    const auto active = service.submit(ada, request("active", 1, true));
    EXPECT_EQ(errorOf([&] { service.remove(ada, active.job.id); }).code(), ErrorCode::Conflict);
    service.remove(ada, done.job.id);
    EXPECT_FALSE(service.image(token));
    EXPECT_EQ(blobs.get(ada.userId, token + ".png"), std::nullopt);
    EXPECT_EQ(errorOf([&] { service.fetch(ada, done.job.id); }).code(), ErrorCode::NotFound);
}

TEST_F(GenerationServiceTest, ImageLinksStopWorkingWhenTheirRetentionEnds) {
    const auto view = service.submit(ada, request("fleeting"));
    const auto token = view.images.at(0).token;
    EXPECT_TRUE(service.image(token));
    clock.advance(jobs::JobRunnerOptions{}.retentionSeconds);
    EXPECT_FALSE(service.image(token));
}

TEST(GenerationServiceOnAFullDisk, UploadsAndInputImagesGetA503AndLeaveNothingCharged) {
    testing::TestDatabase database;
    const auto& db = database.db();
    testing::FullDiskBlobStore full(database.dir() / "files", 0);
    FakeClock clock;
    testing::FakeGenerator generator;
    jobs::JobRunner runner{db, full, generator, clock, {}, [](std::int64_t) { return 1; }};
    GenerationService service{db, full, runner, generator, clock, {}};
    const accounts::Caller ada{testing::addUser(db, "ada@example.com"), "ada@example.com", accounts::findPlan("free"),
                               false};
    const auto png = testing::noisePng(32);
    const auto upload = testing::errorOf([&] { service.upload(ada, png); });
    EXPECT_EQ(upload.code(), ErrorCode::Unavailable);
    EXPECT_STREQ(upload.what(), "the server's disk is full; nothing was stored or charged");  // no server path
    EXPECT_TRUE(upload.retryAfterSeconds.has_value());
    SubmitRequest img2img;
    img2img.params.kind = "img2img";
    img2img.params.prompt = "x";
    img2img.initImage = png;
    EXPECT_EQ(testing::errorOf([&] { service.submit(ada, img2img); }).code(), ErrorCode::Unavailable);
    EXPECT_EQ(imagesUsed(db, ada.userId), 0);
    EXPECT_EQ(storage::JobRepository(db).storedBytes(ada.userId, clock.nowSeconds()), 0);
    EXPECT_EQ(full.count(ada.userId), 0u);
    EXPECT_EQ(full.refused(), 2);
}

}  // namespace
}  // namespace easel::service
