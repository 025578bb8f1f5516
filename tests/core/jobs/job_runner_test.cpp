// The workers over the persistent queue, with the fake generator: a job runs to success with its
// images stored and its usage recorded once; a failed or cancelled one gives its charge back; a
// crash's leftovers are re-run or given up; retention and orphan sweeps.

#include "jobs/job_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "eventually.h"
#include "fake_clock.h"
#include "fake_generator.h"
#include "full_disk_blob_store.h"
#include "storage/notifications.h"
#include "storage/user_repository.h"
#include "storage/worker_repository.h"
#include "test_database.h"

namespace easel::jobs {
namespace {

using namespace std::chrono_literals;
using storage::JobStatus;
using testing::imagesUsed;

class JobRunnerTest : public ::testing::Test {
protected:
    void TearDown() override {
        generator.release();
        generator.resume();
        runner.stop();
    }

    // A job as GenerationService would queue it: the images are charged first.
    std::int64_t queue(const std::string& prompt, int samples = 1, bool temp = false) {
        return queueFor(user, prompt, samples, temp);
    }
    std::int64_t queueFor(std::int64_t owner, const std::string& prompt, int samples = 1, bool temp = false) {
        GenerationParams p;
        p.prompt = prompt;
        p.width = 16;
        p.height = 16;
        p.steps = 4;
        p.samples = samples;
        p.seed = 40;
        for (int i = 0; i < samples; ++i) p.imageTokens.push_back(prompt + "-token-" + std::to_string(i));
        storage::JobRow row;
        row.userId = owner;
        row.kind = "text2img";
        row.images = samples;
        row.request = toJson(p).dump();
        row.temp = temp;
        row.createdAt = clock.nowSeconds();
        EXPECT_TRUE(storage::UserRepository(db).charge(owner, samples, std::nullopt));
        const auto id = jobs.insert(row);
        runner.notify();
        return id;
    }
    storage::JobRow job(std::int64_t id) const { return jobs.find(id).value(); }
    bool finishes(std::int64_t id) { return runner.waitFinished(id, 10s); }

    testing::TestDatabase database;
    const storage::Database& db = database.db();
    storage::JobRepository jobs{db};
    storage::FileBlobStore blobs{database.dir() / "files"};
    FakeClock clock;
    testing::FakeGenerator generator;
    JobRunnerOptions options = [] {
        JobRunnerOptions o;
        o.workers = 2;
        return o;
    }();
    JobRunner runner{db, blobs, generator, clock, options, [](std::int64_t) { return 1; }};
    std::int64_t user = testing::addUser(db, "ada@example.com");
};

TEST_F(JobRunnerTest, AQueuedJobRunsToSuccessWithItsImagesStored) {
    runner.start();
    const auto id = queue("a red circle", 2);
    ASSERT_TRUE(finishes(id));
    const auto done = job(id);
    EXPECT_EQ(done.status, JobStatus::Succeeded);
    EXPECT_EQ(done.attempts, 1);
    EXPECT_EQ(done.finishedAt, clock.nowSeconds());
    EXPECT_EQ(nlohmann::json::parse(done.meta)["seed"], 40);
    const auto images = jobs.imagesOf(id);
    ASSERT_EQ(images.size(), 2u);
    for (int i = 0; i < 2; ++i) {
        // The links promised when the job was accepted.
        EXPECT_EQ(images[i].token, "a red circle-token-" + std::to_string(i));
        EXPECT_EQ(images[i].expiresAt, clock.nowSeconds() + options.retentionSeconds);
        const auto png = blobs.get(user, images[i].token + ".png");
        ASSERT_TRUE(png);
        EXPECT_EQ(inference::decodeImage(*png).width, 16);
    }
    EXPECT_EQ(imagesUsed(db, user), 2);  // the charge stands
}

TEST_F(JobRunnerTest, ASucceededJobWritesExactlyOneUsageRow) {
    runner.start();
    const auto id = queue("once", 3);
    ASSERT_TRUE(finishes(id));
    const auto usage = storage::UsageRepository{db}.list(user, 10, 0);
    ASSERT_EQ(usage.size(), 1u);
    EXPECT_EQ(usage[0].requestId, id);
    EXPECT_EQ(usage[0].images, 3);
    EXPECT_EQ(usage[0].kind, "text2img");
}

TEST_F(JobRunnerTest, TempImagesExpireSooner) {
    runner.start();
    const auto id = queue("temporary", 1, true);
    ASSERT_TRUE(finishes(id));
    EXPECT_EQ(jobs.imagesOf(id).at(0).expiresAt, clock.nowSeconds() + options.tempRetentionSeconds);
}

TEST_F(JobRunnerTest, AJobPastTheTimeLimitIsStoppedFailedAndRefunded) {
    generator.pauseAtStep(2);
    runner.start();
    const auto id = queue("slow", 2);
    ASSERT_TRUE(generator.waitPaused(10s));
    clock.advance(options.maxJobSeconds + 1);  // the job has now run longer than allowed
    generator.resume();
    ASSERT_TRUE(finishes(id));
    const auto failed = job(id);
    EXPECT_EQ(failed.status, JobStatus::Failed);
    EXPECT_EQ(failed.error, "the job ran longer than this server's limit of 1800 s");
    EXPECT_EQ(imagesUsed(db, user), 0);
    EXPECT_TRUE(jobs.imagesOf(id).empty());
    // A job within the limit is not touched.
    const auto quick = queue("quick");
    ASSERT_TRUE(finishes(quick));
    EXPECT_EQ(job(quick).status, JobStatus::Succeeded);
}

TEST_F(JobRunnerTest, AFailedJobKeepsItsErrorAndIsRefunded) {
    runner.start();
    const auto id = queue("explode", 2);
    ASSERT_TRUE(finishes(id));
    const auto failed = job(id);
    EXPECT_EQ(failed.status, JobStatus::Failed);
    EXPECT_EQ(failed.error, "the model ran out of memory");
    EXPECT_EQ(imagesUsed(db, user), 0);
    EXPECT_TRUE(jobs.imagesOf(id).empty());
    EXPECT_EQ(blobs.count(user), 0u);
    EXPECT_EQ(storage::UsageRepository{db}.count(user), 0);
}

TEST_F(JobRunnerTest, CancellingAQueuedJobRefundsItAtOnce) {
    // No workers: the job stays queued.
    const auto id = queue("never runs", 2);
    EXPECT_TRUE(runner.cancel(id));
    EXPECT_EQ(job(id).status, JobStatus::Cancelled);
    EXPECT_EQ(imagesUsed(db, user), 0);
    EXPECT_FALSE(runner.cancel(id));  // already finished: nothing to refund twice
    EXPECT_EQ(imagesUsed(db, user), 0);
    EXPECT_FALSE(runner.cancel(id + 100));
}

TEST_F(JobRunnerTest, CancellingARunningJobStopsItAndRefunds) {
    generator.pauseAtStep(2);
    runner.start();
    const auto id = queue("stopped midway", 2);
    ASSERT_TRUE(generator.waitPaused());
    const auto progress = runner.progress(id);
    ASSERT_TRUE(progress);
    EXPECT_EQ(progress->step, 2);
    EXPECT_EQ(progress->total, 4);
    EXPECT_EQ(progress->samples, 2);
    EXPECT_TRUE(progress->preview);  // the fake draws a preview every other step
    EXPECT_EQ(runner.runningCount(), 1);
    EXPECT_TRUE(runner.cancel(id));
    generator.resume();
    ASSERT_TRUE(finishes(id));
    EXPECT_EQ(job(id).status, JobStatus::Cancelled);
    EXPECT_EQ(imagesUsed(db, user), 0);
    EXPECT_EQ(blobs.count(user), 0u);
    EXPECT_EQ(storage::UsageRepository{db}.count(user), 0);
    EXPECT_FALSE(runner.progress(id));
    EXPECT_EQ(runner.runningCount(), 0);
}

TEST_F(JobRunnerTest, CancellingEveryQueuedJobRefundsEachOnce) {
    queue("one", 1);
    queue("two", 2);
    EXPECT_EQ(imagesUsed(db, user), 3);
    EXPECT_EQ(runner.cancelAllQueued(), 2);
    EXPECT_EQ(imagesUsed(db, user), 0);
    EXPECT_EQ(runner.cancelAllQueued(), 0);
}

TEST_F(JobRunnerTest, AJobACrashLeftRunningRunsAgainOnStartAndIsRecordedOnce) {
    const auto id = queue("interrupted", 1);
    ASSERT_TRUE(jobs.claimNext(clock.nowSeconds(), [](std::int64_t) { return 1; }));  // the crashed attempt
    blobs.put(user, "interrupted-token-0.png", {1, 2, 3});                            // and its half-finished image
    jobs.insertImage({0, id, user, 0, "interrupted-token-0", clock.nowSeconds() + 10}, clock.nowSeconds());
    runner.start();
    ASSERT_TRUE(finishes(id));
    const auto done = job(id);
    EXPECT_EQ(done.status, JobStatus::Succeeded);
    EXPECT_EQ(done.attempts, 2);
    EXPECT_EQ(jobs.imagesOf(id).size(), 1u);
    EXPECT_NE(blobs.get(user, "interrupted-token-0.png"), (std::vector<unsigned char>{1, 2, 3}));
    EXPECT_EQ(storage::UsageRepository{db}.count(user), 1);
    EXPECT_EQ(imagesUsed(db, user), 1);
}

TEST_F(JobRunnerTest, AJobThatCrashedTheServerEveryAttemptIsFailedAndRefunded) {
    const auto id = queue("poison", 2);
    for (int attempt = 1; attempt <= options.maxAttempts; ++attempt) {
        ASSERT_TRUE(jobs.claimNext(clock.nowSeconds(), [](std::int64_t) { return 1; }));
        if (attempt < options.maxAttempts) jobs.requeue(id);
    }
    runner.start();
    const auto failed = job(id);
    EXPECT_EQ(failed.status, JobStatus::Failed);
    EXPECT_NE(failed.error.find("3 times"), std::string::npos) << failed.error;
    EXPECT_EQ(imagesUsed(db, user), 0);
    EXPECT_TRUE(generator.started().empty());
}

TEST_F(JobRunnerTest, AnAccountAtItsConcurrencyCapWaitsWhileAnotherAccountsJobRuns) {
    const auto bob = testing::addUser(db, "bob@example.com");
    generator.block();
    runner.start();
    const auto first = queue("first");
    const auto second = queue("second");
    const auto other = queueFor(bob, "bob's");
    ASSERT_TRUE(generator.waitStarted(2));
    auto started = generator.started();  // the two workers may start in either order
    std::sort(started.begin(), started.end());
    EXPECT_EQ(started, (std::vector<std::string>{"bob's", "first"}));
    EXPECT_EQ(job(second).status, JobStatus::Queued);  // the cap is 1 running job per account
    generator.release();
    for (const auto id : {first, second, other}) ASSERT_TRUE(finishes(id));
    EXPECT_EQ(generator.started().back(), "second");
}

TEST_F(JobRunnerTest, TheFinishedHookSeesTheFinalRow) {
    std::mutex mutex;
    std::vector<std::pair<std::int64_t, JobStatus>> seen;
    runner.setFinishedHook([&](const storage::JobRow& row) {
        std::lock_guard lock(mutex);
        seen.emplace_back(row.id, row.status);
    });
    runner.start();
    const auto ok = queue("fine");
    const auto bad = queue("explode");
    ASSERT_TRUE(finishes(ok));
    ASSERT_TRUE(finishes(bad));
    ASSERT_TRUE(testing::eventually([&] {
        std::lock_guard lock(mutex);
        return seen.size() == 2;
    }));
    std::lock_guard lock(mutex);
    EXPECT_EQ(seen[0], std::make_pair(ok, JobStatus::Succeeded));
    EXPECT_EQ(seen[1], std::make_pair(bad, JobStatus::Failed));
}

TEST_F(JobRunnerTest, ExpiredImagesAreSweptWithTheirFiles) {
    runner.start();
    const auto id = queue("kept a while", 2);
    ASSERT_TRUE(finishes(id));
    clock.advance(options.retentionSeconds - 1);
    EXPECT_EQ(runner.sweepExpired(), 0);
    clock.advance(1);
    EXPECT_EQ(runner.sweepExpired(), 2);
    EXPECT_TRUE(jobs.imagesOf(id).empty());
    EXPECT_EQ(blobs.count(user), 0u);
}

TEST_F(JobRunnerTest, OrphanSweepRemovesOnlyOldFilesThatNoRowNames) {
    runner.start();
    const auto id = queue("has a row", 1);
    ASSERT_TRUE(finishes(id));
    blobs.put(user, "orphan.png", {1});
    jobs.insertUpload(user, "upload-live", clock.nowSeconds(), clock.nowSeconds() + 3600);
    blobs.put(user, "upload-live", {2});
    EXPECT_EQ(runner.sweepOrphans(3600), 0);  // too young: its row may be about to be committed
    EXPECT_EQ(runner.sweepOrphans(0), 1);
    EXPECT_EQ(blobs.get(user, "orphan.png"), std::nullopt);
    EXPECT_TRUE(blobs.get(user, "upload-live"));
    EXPECT_TRUE(blobs.get(user, "has a row-token-0.png"));
}

TEST_F(JobRunnerTest, ADiskThatFillsUpMidJobFailsItCleanlyAndRefundsIt) {
    testing::FullDiskBlobStore full(database.dir() / "full", 1);  // room for one of the two images
    JobRunner onFullDisk{db, full, generator, clock, options, [](std::int64_t) { return 1; }};
    onFullDisk.start();
    const auto id = queue("two images", 2);
    onFullDisk.notify();
    ASSERT_TRUE(onFullDisk.waitFinished(id, 10s));
    const auto failed = job(id);
    EXPECT_EQ(failed.status, JobStatus::Failed);
    // What happened, without the server's paths.
    EXPECT_EQ(failed.error, "the server ran out of disk space while storing the images");
    EXPECT_EQ(full.refused(), 1);
    EXPECT_EQ(imagesUsed(db, user), 0);  // refunded
    EXPECT_TRUE(jobs.imagesOf(id).empty());
    EXPECT_EQ(full.count(user), 0u);  // the image that was written is gone again
    EXPECT_EQ(storage::UsageRepository{db}.count(user), 0);
    // With room again the next job succeeds.
    full.setRoom(10);
    const auto next = queue("after cleanup", 2);
    onFullDisk.notify();
    ASSERT_TRUE(onFullDisk.waitFinished(next, 10s));
    EXPECT_EQ(job(next).status, JobStatus::Succeeded);
    EXPECT_EQ(full.count(user), 2u);
    onFullDisk.stop();
}

// Several servers on one database (PostgreSQL in production; the same rows here): leases.
class SharedQueueTest : public JobRunnerTest {
protected:
    JobRunnerOptions shared = [] {
        JobRunnerOptions o;
        o.workers = 1;
        o.sharedDatabase = true;
        o.leaseSeconds = 3;  // heartbeat every second
        o.workerId = "this-server";
        return o;
    }();
    // Another server's worker claims the job and dies with it (kill -9: its lease is never renewed).
    storage::JobRow claimedByADeadServer(std::int64_t id) {
        auto row = jobs.claimNext(clock.nowSeconds(), [](std::int64_t) { return 1; }, storage::JobFamily::Generation,
                                  {"dead-server", 3});
        EXPECT_TRUE(row && row->id == id);
        return *row;
    }
};

TEST_F(SharedQueueTest, AJobWhoseWorkerDiedRunsAgainHereAfterItsLeaseOnceAndChargedOnce) {
    const auto id = queue("survivor");
    claimedByADeadServer(id);
    JobRunner here{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    here.start();
    // Within the lease the job is the other server's: not started here, not even after heartbeats.
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(job(id).status, JobStatus::Running);
    EXPECT_EQ(generator.started().size(), 0u);
    clock.advance(4);  // the lease ran out
    ASSERT_TRUE(here.waitFinished(id, 10s));
    here.stop();
    const auto done = job(id);
    EXPECT_EQ(done.status, JobStatus::Succeeded);
    EXPECT_EQ(done.attempts, 2);
    EXPECT_EQ(generator.started().size(), 1u);
    EXPECT_EQ(imagesUsed(db, user), 1);  // charged once, at submission
    const auto images = jobs.imagesOf(id);
    ASSERT_EQ(images.size(), 1u);
    EXPECT_EQ(images[0].token, "survivor-token-0");  // the link promised at submission
    EXPECT_TRUE(blobs.get(user, "survivor-token-0.png").has_value());
}

TEST_F(SharedQueueTest, AWorkerAdvertisesItsModelsAndRunsOnlyJobsOnThemAndAnApiServerRunsNone) {
    auto onModel = [&](const std::string& prompt, const std::string& model) {
        const auto id = queue(prompt);
        db.statement("UPDATE jobs SET model_id = ? WHERE id = ?").bindAll(model, id).run();
        return id;
    };
    const auto theirs = onModel("for an SDXL worker", "sdxl-base");
    const auto ours = onModel("for this worker", "fake-model");
    auto apiOptions = shared;
    apiOptions.workers = 0;
    apiOptions.workerId = "api-server";
    JobRunner api{db, blobs, generator, clock, apiOptions, [](std::int64_t) { return 1; }};
    api.start();
    JobRunner here{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    here.start();
    ASSERT_TRUE(here.waitFinished(ours, 10s));
    EXPECT_EQ(job(ours).status, JobStatus::Succeeded);
    EXPECT_EQ(generator.lastParams().modelId, "fake-model");  // the model the job was queued for
    std::this_thread::sleep_for(1500ms);                      // heartbeats pass; nobody here has SDXL
    EXPECT_EQ(job(theirs).status, JobStatus::Queued);
    // Only the worker is in the workers table, with what its generator has.
    const auto rows = storage::WorkerRepository(db).seenSince(0);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].workerId, "this-server");
    EXPECT_NE(rows[0].models.find("\"fake-model\""), std::string::npos) << rows[0].models;
    here.stop();
    api.stop();
    EXPECT_TRUE(storage::WorkerRepository(db).seenSince(0).empty());  // a clean stop retires it
    EXPECT_EQ(generator.started().size(), 1u);
}

TEST_F(SharedQueueTest, AStartingServerLeavesOtherServersRunningJobsAlone) {
    const auto id = queue("theirs");
    claimedByADeadServer(id);
    JobRunner here{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    here.start();  // a single server would re-queue every running job here
    here.stop();
    EXPECT_EQ(job(id).status, JobStatus::Running);
    EXPECT_EQ(job(id).attempts, 1);
}

TEST_F(SharedQueueTest, ACancelFromAnotherServerStopsTheJobWhereItRunsAndRefundsIt) {
    generator.pauseAtStep(2);
    JobRunner here{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    here.start();
    const auto id = queue("to be cancelled");
    here.notify();
    ASSERT_TRUE(generator.waitPaused());
    JobRunner api{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};  // never started
    EXPECT_TRUE(api.cancel(id));
    ASSERT_TRUE(testing::eventually([&] { return here.stats().stoppedByHeartbeat == 1; }));
    generator.resume();
    ASSERT_TRUE(here.waitFinished(id, 10s));
    here.stop();
    EXPECT_EQ(job(id).status, JobStatus::Cancelled);
    EXPECT_EQ(imagesUsed(db, user), 0);
    EXPECT_FALSE(api.cancel(id));  // already over
}

TEST_F(SharedQueueTest, ACancelFromAnotherServerArrivesThroughTheListenerWithoutWaitingForTheHeartbeat) {
    if (!testing::testsUsePostgres()) GTEST_SKIP() << "LISTEN / NOTIFY: PostgreSQL only";
    shared.leaseSeconds = 60;  // the heartbeat alone would look in 20 s
    generator.pauseAtStep(2);
    JobRunner here{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    storage::NotificationListener listener(database.path().string(), {storage::kCancelChannel},
                                           [&](const std::string&) { here.wakeHeartbeat(); });
    ASSERT_TRUE(testing::eventually([&] { return listener.listening(); }));
    here.start();
    const auto id = queue("to be cancelled at once");
    here.notify();
    ASSERT_TRUE(generator.waitPaused());
    JobRunner api{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    EXPECT_TRUE(api.cancel(id));
    EXPECT_TRUE(testing::eventually([&] { return here.stats().stoppedByHeartbeat == 1; }, 5s));
    generator.resume();
    ASSERT_TRUE(here.waitFinished(id, 10s));
    here.stop();
    EXPECT_EQ(job(id).status, JobStatus::Cancelled);
}

TEST_F(SharedQueueTest, AnotherServerSeesTheRunningJobsProgressAndPreviewAndItsWorkersSpeed) {
    shared.progressWriteSeconds = 0;  // every step (by default at most every half second)
    JobRunner here{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    here.start();
    auto apiOptions = shared;
    apiOptions.workers = 0;
    apiOptions.workerId = "api-server";
    JobRunner api{db, blobs, generator, clock, apiOptions, [](std::int64_t) { return 1; }};  // never generates

    // Its speed before any worker measured one: the prior guess.
    EXPECT_DOUBLE_EQ(api.secondsPerImage(), 1.0);
    generator.pauseAtStep(2);
    const auto id = queue("watched from afar");
    here.notify();
    ASSERT_TRUE(generator.waitPaused());
    const auto local = here.progress(id);
    ASSERT_TRUE(local && local->preview);
    const auto remote = api.progress(id);
    ASSERT_TRUE(remote);
    EXPECT_EQ(remote->step, 2);
    EXPECT_EQ(remote->total, 4);
    EXPECT_EQ(remote->sample, 0);
    EXPECT_EQ(remote->samples, 1);
    ASSERT_TRUE(remote->preview);
    EXPECT_EQ(*remote->preview, *local->preview);  // the fake's step-2 preview, byte for byte
    generator.resume();
    ASSERT_TRUE(here.waitFinished(id, 10s));
    EXPECT_FALSE(api.progress(id));  // over: nothing to show, and the row is gone
    auto rows = db.statement("SELECT COUNT(*) FROM job_progress");
    ASSERT_TRUE(rows.step());
    EXPECT_EQ(rows.int64(0), 0);

    // The worker advertises what it measured at its next heartbeat; the API server's ETAs use it.
    ASSERT_TRUE(testing::eventually([&] { return api.secondsPerImage() == here.secondsPerImage(); }, 10s));
    EXPECT_LT(here.secondsPerImage(), 1.0);  // the fake takes milliseconds, not the prior second
    here.stop();
}

TEST_F(SharedQueueTest, DeletingAnAccountStopsItsJobsOnOtherServersAndWaitsForThem) {
    generator.pauseAtStep(2);
    JobRunner here{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    here.start();
    const auto running = queue("running elsewhere");
    here.notify();
    ASSERT_TRUE(generator.waitPaused());
    const auto waiting = queue("still queued");
    JobRunner api{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};  // never started
    std::atomic<bool> returned{false};
    std::thread purge([&] {
        api.cancelAllOf(user);
        returned = true;
    });
    // The worker's heartbeat (a second here) stops the job; the purge waits for it to end.
    ASSERT_TRUE(testing::eventually([&] { return here.stats().stoppedByHeartbeat == 1; }));
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(returned.load());
    generator.resume();
    ASSERT_TRUE(testing::eventually([&] { return returned.load(); }));
    purge.join();
    EXPECT_EQ(job(running).status, JobStatus::Cancelled);
    EXPECT_EQ(job(waiting).status, JobStatus::Cancelled);
    for (const auto& b : blobs.list(user)) ADD_FAILURE() << "left behind: " << b.name;
    here.stop();
}

TEST_F(SharedQueueTest, ARunTakenOverAfterItsLeaseRanOutChangesNothing) {
    generator.pauseAtStep(2);
    JobRunner here{db, blobs, generator, clock, shared, [](std::int64_t) { return 1; }};
    here.start();
    const auto id = queue("taken over");
    here.notify();
    ASSERT_TRUE(generator.waitPaused());
    // This server stalls past its lease (a lost network); another takes the job over.
    // (Seen from a clock far enough ahead that this server's heartbeat renewals cannot win the race.)
    clock.advance(10);
    ASSERT_TRUE(jobs.requeueExpired(clock.nowSeconds() + 100, 3, "other-server").empty());
    const auto other = jobs.claimNext(clock.nowSeconds(), [](std::int64_t) { return 1; },
                                      storage::JobFamily::Generation, {"other-server", 3});
    ASSERT_TRUE(other && other->id == id);
    ASSERT_TRUE(testing::eventually([&] { return here.stats().stoppedByHeartbeat == 1; }));
    generator.resume();
    ASSERT_TRUE(testing::eventually([&] { return here.stats().jobsEnded.count("lost") == 1; }));
    here.stop();
    EXPECT_EQ(job(id).status, JobStatus::Running);  // the other server's run, untouched
    EXPECT_EQ(imagesUsed(db, user), 1);             // no refund of a job that still runs
    EXPECT_TRUE(jobs.markSucceeded(id, "{}", 1.0, clock.nowSeconds(), other->attempts));
}

}  // namespace
}  // namespace easel::jobs
