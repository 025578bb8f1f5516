// The persistent queue: claim order and concurrency caps, the status transitions that only go one
// way, queue standing, crash recovery, and the images and uploads tables.

#include "storage/job_repository.h"

#include <gtest/gtest.h>

#include "test_database.h"

namespace easel::storage {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

class JobRepositoryTest : public ::testing::Test {
protected:
    std::int64_t queue(std::int64_t userId, int priority = 0, int images = 1, const std::string& idempotencyKey = {}) {
        JobRow row;
        row.userId = userId;
        row.kind = "text2img";
        row.priority = priority;
        row.images = images;
        row.request = R"({"prompt":"p"})";
        row.idempotencyKey = idempotencyKey;
        row.createdAt = kNow;
        return jobs.insert(row);
    }
    std::int64_t queueTraining(std::int64_t userId, const char* kind = kFineTuneKind, int priority = 0,
                               const std::string& home = {}) {
        JobRow row;
        row.userId = userId;
        row.kind = kind;
        row.priority = priority;
        row.request = R"({"model_id":"ft-x"})";
        row.createdAt = kNow;
        row.home = home;
        return jobs.insert(row);
    }
    std::optional<JobRow> claim(int cap = 10) {
        return jobs.claimNext(kNow + 5, [cap](std::int64_t) { return cap; });
    }
    JobStatus status(std::int64_t id) { return jobs.find(id).value().status; }

    testing::TestDatabase database;
    const Database& db = database.db();
    JobRepository jobs{db};
    std::int64_t ada = testing::addUser(db, "ada@example.com");
    std::int64_t bob = testing::addUser(db, "bob@example.com");
};

TEST_F(JobRepositoryTest, AnInsertedJobIsQueuedWithEveryField) {
    JobRow row;
    row.userId = ada;
    row.kind = "img2img";
    row.priority = 2;
    row.images = 3;
    row.request = R"({"prompt":"x"})";
    row.trackId = "order-1";
    row.webhook = "https://example.com/hook";
    row.temp = true;
    row.idempotencyKey = "k1";
    row.createdAt = kNow;
    const auto id = jobs.insert(row);
    const auto found = jobs.find(id);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->status, JobStatus::Queued);
    EXPECT_EQ(found->userId, ada);
    EXPECT_EQ(found->kind, "img2img");
    EXPECT_EQ(found->priority, 2);
    EXPECT_EQ(found->images, 3);
    EXPECT_EQ(found->request, row.request);
    EXPECT_EQ(found->trackId, "order-1");
    EXPECT_EQ(found->webhook, "https://example.com/hook");
    EXPECT_TRUE(found->temp);
    EXPECT_EQ(found->attempts, 0);
    EXPECT_EQ(found->createdAt, kNow);
    EXPECT_FALSE(found->startedAt);
    EXPECT_FALSE(found->finishedAt);
    EXPECT_EQ(jobs.activeCount(ada), 1);
    EXPECT_EQ(jobs.queuedTotal(), 1);
}

TEST_F(JobRepositoryTest, StatusNamesRoundTripAndUnknownOnesAreRefused) {
    for (auto s :
         {JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled}) {
        EXPECT_EQ(parseJobStatus(jobStatusName(s)), s);
    }
    EXPECT_THROW(parseJobStatus("paused"), DatabaseError);
}

TEST_F(JobRepositoryTest, ClaimsTakeTheHighestPriorityFirstThenTheOldest) {
    const auto low = queue(ada, 0);
    const auto highOld = queue(bob, 3);
    const auto highNew = queue(ada, 3);
    const auto mid = queue(bob, 1);
    std::vector<std::int64_t> order;
    while (const auto job = claim()) order.push_back(job->id);
    EXPECT_EQ(order, (std::vector<std::int64_t>{highOld, highNew, mid, low}));
}

TEST_F(JobRepositoryTest, AWorkerClaimsOnlyJobsOnItsModelsOrOnNoneInParticular) {
    auto onModel = [&](const std::string& model) {
        JobRow row;
        row.userId = ada;
        row.kind = "text2img";
        row.images = 1;
        row.request = R"({"prompt":"p"})";
        row.createdAt = kNow;
        row.modelId = model;
        return jobs.insert(row);
    };
    const auto xl = onModel("sdxl-base");
    const auto shapes = onModel("easel-shapes-64");
    const auto any = onModel("");
    EXPECT_EQ(jobs.find(xl)->modelId, "sdxl-base");
    EXPECT_EQ(jobs.find(any)->modelId, "");
    const std::vector<std::string> mine{"easel-shapes-64", "sd15"};
    auto claimMine = [&] {
        return jobs.claimNext(
            kNow, [](std::int64_t) { return 10; }, JobFamily::Generation, {}, mine);
    };
    EXPECT_EQ(claimMine()->id, shapes);
    EXPECT_EQ(claimMine()->id, any);
    EXPECT_FALSE(claimMine());  // the SDXL job waits for a worker that has SDXL
    EXPECT_FALSE(jobs.claimNext(
        kNow, [](std::int64_t) { return 10; }, JobFamily::Generation, {}, std::vector<std::string>{}));
    EXPECT_EQ(
        jobs.claimNext(
                kNow, [](std::int64_t) { return 10; }, JobFamily::Generation, {}, std::vector<std::string>{"sdxl-base"})
            ->id,
        xl);
}

TEST_F(JobRepositoryTest, AClaimMarksTheJobRunningAndCountsTheAttempt) {
    const auto id = queue(ada);
    const auto job = claim();
    ASSERT_TRUE(job);
    EXPECT_EQ(job->id, id);
    EXPECT_EQ(job->status, JobStatus::Running);
    EXPECT_EQ(job->attempts, 1);
    const auto stored = jobs.find(id);
    EXPECT_EQ(stored->status, JobStatus::Running);
    EXPECT_EQ(stored->startedAt, kNow + 5);
    EXPECT_EQ(stored->attempts, 1);
    EXPECT_EQ(jobs.queuedTotal(), 0);
    EXPECT_EQ(jobs.activeCount(ada), 1);
    EXPECT_FALSE(claim());
}

TEST_F(JobRepositoryTest, AnOwnerAtItsConcurrencyCapIsSkippedForTheNextOwner) {
    queue(ada);
    const auto adaSecond = queue(ada);
    const auto bobs = queue(bob);
    ASSERT_TRUE(claim(1));  // ada's first runs
    const auto next = claim(1);
    ASSERT_TRUE(next);
    EXPECT_EQ(next->id, bobs);  // ada's second waits for her slot
    EXPECT_FALSE(claim(1));
    EXPECT_EQ(status(adaSecond), JobStatus::Queued);
}

TEST_F(JobRepositoryTest, OnlyARunningJobCanSucceed) {
    const auto id = queue(ada);
    EXPECT_FALSE(jobs.markSucceeded(id, "{}", 1.0, kNow));
    claim();
    EXPECT_TRUE(jobs.markSucceeded(id, R"({"seed":1})", 2.5, kNow + 9));
    const auto job = jobs.find(id);
    EXPECT_EQ(job->status, JobStatus::Succeeded);
    EXPECT_EQ(job->meta, R"({"seed":1})");
    EXPECT_DOUBLE_EQ(job->generationSeconds, 2.5);
    EXPECT_EQ(job->finishedAt, kNow + 9);
    EXPECT_FALSE(jobs.markSucceeded(id, "{}", 1.0, kNow));
}

TEST_F(JobRepositoryTest, AFinishedJobCanNeitherFailNorBeCancelled) {
    const auto failed = queue(ada);
    EXPECT_TRUE(jobs.markFailed(failed, "out of memory", kNow));
    EXPECT_EQ(jobs.find(failed)->error, "out of memory");
    EXPECT_FALSE(jobs.markFailed(failed, "again", kNow));
    EXPECT_FALSE(jobs.markCancelled(failed, kNow));
    EXPECT_EQ(status(failed), JobStatus::Failed);

    const auto running = queue(ada);
    claim();
    EXPECT_TRUE(jobs.markCancelled(running, kNow));
    EXPECT_FALSE(jobs.markCancelled(running, kNow));
    EXPECT_FALSE(jobs.markFailed(running, "late", kNow));
    EXPECT_EQ(status(running), JobStatus::Cancelled);
    EXPECT_EQ(jobs.activeCount(ada), 0);
}

TEST_F(JobRepositoryTest, CancelIfQueuedLeavesARunningJobAlone) {
    const auto running = queue(ada);
    claim();
    const auto queued = queue(ada);
    EXPECT_FALSE(jobs.cancelIfQueued(running, kNow));
    EXPECT_EQ(status(running), JobStatus::Running);
    EXPECT_TRUE(jobs.cancelIfQueued(queued, kNow));
    EXPECT_EQ(status(queued), JobStatus::Cancelled);
    EXPECT_EQ(jobs.find(queued)->finishedAt, kNow);
}

TEST_F(JobRepositoryTest, QueueStandingCountsTheJobsAndImagesAhead) {
    queue(bob, 0, 2);
    claim();           // running: its 2 images are ahead of everyone
    queue(bob, 1, 1);  // ahead: higher priority
    queue(ada, 0, 3);  // ahead: same priority, older
    const auto mine = queue(ada, 0, 1);
    queue(bob, 0, 4);  // behind: newer
    const auto standing = jobs.queueStanding(*jobs.find(mine));
    EXPECT_EQ(standing.position, 2);
    EXPECT_EQ(standing.imagesAhead, 2 + 1 + 3);
    EXPECT_EQ(jobs.queuedIds().size(), 4u);
}

TEST_F(JobRepositoryTest, AfterACrashRunningJobsRequeueUntilTheyUsedEveryAttempt) {
    const auto once = queue(ada);
    const auto thrice = queue(bob);
    claim();
    claim();
    for (int i = 0; i < 2; ++i) {  // bob's job crashed the server twice already
        jobs.requeue(thrice);
        ASSERT_EQ(claim()->id, thrice);
    }
    const auto exhausted = jobs.requeueRunning(3);
    ASSERT_EQ(exhausted.size(), 1u);
    EXPECT_EQ(exhausted[0].id, thrice);
    EXPECT_EQ(exhausted[0].attempts, 3);
    EXPECT_EQ(status(thrice), JobStatus::Running);  // for the caller to fail and refund
    EXPECT_EQ(status(once), JobStatus::Queued);
    EXPECT_FALSE(jobs.find(once)->startedAt);
}

TEST_F(JobRepositoryTest, AClaimTakesALeaseThatItsOwnerRenewsAndOnlyAnExpiredOneIsRequeued) {
    const auto id = queue(ada);
    const auto job = jobs.claimNext(kNow, [](std::int64_t) { return 1; }, JobFamily::Generation, {"worker-a", 30});
    ASSERT_TRUE(job);
    EXPECT_TRUE(jobs.requeueExpired(kNow + 29, 3, "worker-b").empty());
    EXPECT_EQ(status(id), JobStatus::Running);  // still within its lease
    EXPECT_EQ(jobs.renewLeases("worker-a", kNow + 60), 1);
    EXPECT_EQ(jobs.renewLeases("worker-b", kNow + 60), 0);
    jobs.requeueExpired(kNow + 59, 3, "worker-b");
    EXPECT_EQ(status(id), JobStatus::Running);  // renewed to kNow + 60
    jobs.requeueExpired(kNow + 61, 3, "worker-a");
    EXPECT_EQ(status(id), JobStatus::Running);  // never the caller's own
    EXPECT_TRUE(jobs.requeueExpired(kNow + 61, 3, "worker-b").empty());
    EXPECT_EQ(status(id), JobStatus::Queued);  // its worker died: back in the queue, same row, same request
    const auto again =
        jobs.claimNext(kNow + 62, [](std::int64_t) { return 1; }, JobFamily::Generation, {"worker-b", 30});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, id);
    EXPECT_EQ(again->attempts, 2);
    EXPECT_EQ(again->request, job->request);
}

TEST_F(JobRepositoryTest, TheRunWhoseLeaseRanOutIsFencedOffByItsAttempt) {
    const auto id = queue(ada);
    const auto first = jobs.claimNext(kNow, [](std::int64_t) { return 1; }, JobFamily::Generation, {"worker-a", 30});
    ASSERT_TRUE(first);
    jobs.requeueExpired(kNow + 31, 3, "worker-b");
    const auto second =
        jobs.claimNext(kNow + 32, [](std::int64_t) { return 1; }, JobFamily::Generation, {"worker-b", 30});
    ASSERT_TRUE(second);
    EXPECT_EQ(jobs.toStop({{id, first->attempts}}), std::vector<std::int64_t>{id});  // the old run should stop
    EXPECT_TRUE(jobs.toStop({{id, second->attempts}}).empty());
    // The old worker wakes up and reports: nothing it says counts.
    EXPECT_FALSE(jobs.markSucceeded(id, R"({"old":true})", 1.0, kNow + 33, first->attempts));
    EXPECT_FALSE(jobs.markFailed(id, "old run failed", kNow + 33, first->attempts));
    EXPECT_FALSE(jobs.markCancelled(id, kNow + 33, first->attempts));
    jobs.requeue(id, first->attempts);
    EXPECT_EQ(status(id), JobStatus::Running);
    EXPECT_TRUE(jobs.markSucceeded(id, R"({"new":true})", 1.0, kNow + 34, second->attempts));
    EXPECT_EQ(jobs.find(id)->meta, R"({"new":true})");
}

TEST_F(JobRepositoryTest, ACancelRequestReachesTheRunningJobsWorkerOnly) {
    const auto waiting = queue(ada);
    EXPECT_FALSE(jobs.requestCancel(waiting));  // a queued job is cancelled directly, not requested
    const auto running = jobs.claimNext(kNow, [](std::int64_t) { return 1; }, JobFamily::Generation, {"w", 30});
    ASSERT_TRUE(running);
    EXPECT_TRUE(jobs.toStop({{running->id, running->attempts}}).empty());
    EXPECT_TRUE(jobs.requestCancel(running->id));
    EXPECT_EQ(jobs.toStop({{running->id, running->attempts}}), std::vector<std::int64_t>{running->id});
    EXPECT_TRUE(jobs.markCancelled(running->id, kNow + 1, running->attempts));
    EXPECT_FALSE(jobs.requestCancel(running->id));
}

TEST_F(JobRepositoryTest, ARunsProgressIsReadWhileItRunsAndAnOlderRunCannotOverwriteIt) {
    const auto id = queue(ada);
    EXPECT_FALSE(jobs.progressOf(id));
    const auto first = jobs.claimNext(kNow, [](std::int64_t) { return 1; }, JobFamily::Generation, {"worker-a", 30});
    ASSERT_TRUE(first);
    ProgressRow p;
    p.attempt = first->attempts;
    p.step = 3;
    p.total = 20;
    p.sample = 1;
    p.samples = 2;
    p.preview = Blob{0x89, 'P', 'N', 'G', 0, 1, 255};
    p.updatedAt = kNow + 1;
    jobs.saveProgress(id, p);
    auto read = jobs.progressOf(id);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->attempt, first->attempts);
    EXPECT_EQ(read->step, 3);
    EXPECT_EQ(read->total, 20);
    EXPECT_EQ(read->sample, 1);
    EXPECT_EQ(read->samples, 2);
    EXPECT_EQ(read->preview, p.preview);  // bytes, a zero and 0xff included
    EXPECT_EQ(read->updatedAt, kNow + 1);
    p.step = 4;
    p.preview.reset();
    jobs.saveProgress(id, p);
    EXPECT_EQ(jobs.progressOf(id)->step, 4);
    EXPECT_FALSE(jobs.progressOf(id)->preview);

    // worker-a's lease runs out and worker-b runs the job again: a row of the first run is not shown,
    // and once the second run wrote, the first one's late report changes nothing.
    jobs.requeueExpired(kNow + 31, 3, "worker-b");
    const auto second =
        jobs.claimNext(kNow + 32, [](std::int64_t) { return 1; }, JobFamily::Generation, {"worker-b", 30});
    ASSERT_TRUE(second);
    EXPECT_FALSE(jobs.progressOf(id));
    ProgressRow q;
    q.attempt = second->attempts;
    q.step = 1;
    q.total = 20;
    jobs.saveProgress(id, q);
    p.step = 19;
    jobs.saveProgress(id, p);
    ASSERT_TRUE(jobs.progressOf(id));
    EXPECT_EQ(jobs.progressOf(id)->step, 1);
    jobs.clearProgress(id, first->attempts);  // the old run ending leaves the new one's row
    EXPECT_TRUE(jobs.progressOf(id));
    jobs.clearProgress(id, second->attempts);
    EXPECT_FALSE(jobs.progressOf(id));

    // A row left behind (a killed worker) is not shown once the job is over, and goes with the job.
    jobs.saveProgress(id, q);
    EXPECT_TRUE(jobs.markSucceeded(id, "{}", 1.0, kNow + 40, second->attempts));
    EXPECT_FALSE(jobs.progressOf(id));
    jobs.remove(id);
    auto rows = db.statement("SELECT COUNT(*) FROM job_progress");
    ASSERT_TRUE(rows.step());
    EXPECT_EQ(rows.int64(0), 0);
}

TEST_F(JobRepositoryTest, LiveRunningJobsAreThoseWhoseLeaseHolds) {
    queue(ada);
    queue(ada);
    queue(bob);
    EXPECT_EQ(jobs.liveRunningCount(ada, kNow), 0);  // queued ones do not count
    ASSERT_TRUE(jobs.claimNext(kNow, [](std::int64_t) { return 1; }, JobFamily::Generation, {"worker-a", 30}));
    ASSERT_TRUE(jobs.claimNext(kNow, [](std::int64_t) { return 1; }, JobFamily::Generation, {"worker-b", 60}));
    EXPECT_EQ(jobs.liveRunningCount(ada, kNow + 30), 1);
    EXPECT_EQ(jobs.liveRunningCount(bob, kNow + 30), 1);
    EXPECT_EQ(jobs.liveRunningCount(ada, kNow + 31), 0);  // its worker is presumed dead
    EXPECT_EQ(jobs.liveRunningCount(bob, kNow + 61), 0);
}

TEST_F(JobRepositoryTest, AnAccountsCancelRequestReachesItsRunningJobsOfThatFamilyOnly) {
    const auto generation = queue(ada);
    const auto queued = queue(ada);
    const auto bobs = queue(bob);
    const auto training = queueTraining(ada);
    auto claim = [&](JobFamily family) {
        return jobs.claimNext(kNow, [](std::int64_t) { return 1; }, family, {"w", 30}).value();
    };
    const auto first = claim(JobFamily::Generation);
    const auto second = claim(JobFamily::Generation);
    const auto third = claim(JobFamily::Training);
    ASSERT_EQ(first.id, generation);
    ASSERT_EQ(second.id, bobs);
    ASSERT_EQ(third.id, training);
    EXPECT_EQ(jobs.requestCancelOf(ada, JobFamily::Generation), 1);
    EXPECT_EQ(jobs.toStop({{generation, first.attempts}}), std::vector<std::int64_t>{generation});
    EXPECT_TRUE(jobs.toStop({{bobs, second.attempts}, {training, third.attempts}}).empty());
    EXPECT_EQ(status(queued), JobStatus::Queued);  // a queued job is cancelled directly, not requested
    EXPECT_EQ(jobs.requestCancelOf(ada, JobFamily::Training), 1);
    EXPECT_EQ(jobs.toStop({{training, third.attempts}}), std::vector<std::int64_t>{training});
}

TEST_F(JobRepositoryTest, AnExpiredLeaseThatUsedEveryAttemptIsReturnedToBeFailed) {
    const auto id = queue(ada);
    for (int attempt = 1; attempt <= 3; ++attempt) {
        ASSERT_TRUE(jobs.claimNext(kNow, [](std::int64_t) { return 1; }, JobFamily::Generation, {"dead", 30}));
        const auto exhausted = jobs.requeueExpired(kNow + 31, 3, "alive");
        if (attempt < 3) {
            EXPECT_TRUE(exhausted.empty());
            EXPECT_EQ(status(id), JobStatus::Queued);
        } else {
            ASSERT_EQ(exhausted.size(), 1u);
            EXPECT_EQ(exhausted[0].id, id);
            EXPECT_EQ(status(id), JobStatus::Running);  // for the caller to fail and refund
        }
    }
}

TEST_F(JobRepositoryTest, AnIdempotencyKeyFindsTheFirstJobAndIsUniquePerAccount) {
    const auto first = queue(ada, 0, 1, "retry-me");
    EXPECT_EQ(jobs.findByIdempotencyKey(ada, "retry-me")->id, first);
    EXPECT_FALSE(jobs.findByIdempotencyKey(bob, "retry-me"));
    EXPECT_THROW(queue(ada, 0, 1, "retry-me"), DatabaseError);
    EXPECT_NO_THROW(queue(bob, 0, 1, "retry-me"));  // another account may use the same key
    EXPECT_NO_THROW(queue(ada));                    // no key: no constraint
    EXPECT_NO_THROW(queue(ada));
}

TEST_F(JobRepositoryTest, CancellingAnAccountsQueueLeavesOthersAndRunningJobs) {
    const auto running = queue(ada);
    claim();
    const auto a1 = queue(ada);
    const auto a2 = queue(ada);
    const auto b1 = queue(bob);
    const auto cancelled = jobs.cancelQueuedOf(ada, kNow);
    EXPECT_EQ(cancelled, (std::vector<std::int64_t>{a1, a2}));
    EXPECT_EQ(status(running), JobStatus::Running);
    EXPECT_EQ(status(b1), JobStatus::Queued);
}

TEST_F(JobRepositoryTest, HistoryListsNewestFirstAndCanKeepOnlyActiveJobs) {
    const auto done = queue(ada);
    jobs.markFailed(done, "x", kNow);
    const auto waiting = queue(ada);
    queue(bob);
    const auto all = jobs.listForUser(ada, 10, 0, false);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].id, waiting);
    EXPECT_EQ(all[1].id, done);
    const auto active = jobs.listForUser(ada, 10, 0, true);
    ASSERT_EQ(active.size(), 1u);
    EXPECT_EQ(active[0].id, waiting);
    EXPECT_EQ(jobs.countForUser(ada), 2);
    jobs.remove(done);
    EXPECT_EQ(jobs.countForUser(ada), 1);
}

TEST_F(JobRepositoryTest, ImagesAreFoundByJobAndTokenAndExpire) {
    const auto id = queue(ada, 0, 2);
    jobs.insertImage({0, id, ada, 1, "tok-b", kNow + 100}, kNow);
    jobs.insertImage({0, id, ada, 0, "tok-a", kNow + 50}, kNow);
    const auto images = jobs.imagesOf(id);
    ASSERT_EQ(images.size(), 2u);
    EXPECT_EQ(images[0].token, "tok-a");  // in sample order
    EXPECT_EQ(images[1].index, 1);
    EXPECT_EQ(jobs.imageByToken("tok-b")->jobId, id);
    EXPECT_FALSE(jobs.imageByToken("tok-c"));
    const auto expired = jobs.expiredImages(kNow + 50);
    ASSERT_EQ(expired.size(), 1u);
    EXPECT_EQ(expired[0].token, "tok-a");
    jobs.removeImage(expired[0].id);
    EXPECT_EQ(jobs.imagesOf(id).size(), 1u);
    jobs.removeImagesOf(id);
    EXPECT_TRUE(jobs.imagesOf(id).empty());
}

TEST_F(JobRepositoryTest, UploadsBelongToTheirOwnerUntilTheyExpire) {
    jobs.insertUpload(ada, "upload-1", kNow, kNow + 10);
    jobs.insertUpload(bob, "upload-2", kNow, kNow + 20);
    EXPECT_EQ(jobs.uploadOwner("upload-1", kNow + 9), ada);
    EXPECT_FALSE(jobs.uploadOwner("upload-1", kNow + 10));
    const auto taken = jobs.takeExpiredUploads(kNow + 10);
    ASSERT_EQ(taken.size(), 1u);
    EXPECT_EQ(taken[0], (std::pair<std::int64_t, std::string>{ada, "upload-1"}));
    EXPECT_TRUE(jobs.takeExpiredUploads(kNow + 10).empty());  // the row is gone
    EXPECT_EQ(jobs.uploadOwner("upload-2", kNow + 10), bob);
}

TEST_F(JobRepositoryTest, StoredBlobNamesAreTheOwnersImageFilesAndUploads) {
    const auto id = queue(ada);
    jobs.insertImage({0, id, ada, 0, "tok-a", kNow + 100}, kNow);
    jobs.insertUpload(ada, "upload-1", kNow, kNow + 10);
    jobs.insertUpload(bob, "upload-2", kNow, kNow + 10);
    EXPECT_EQ(jobs.storedBlobNames(ada), (std::set<std::string>{"tok-a.png", "upload-1"}));
}

TEST_F(JobRepositoryTest, AGenerationWorkerNeverClaimsATrainingNorATrainingWorkerAGeneration) {
    const auto training = queueTraining(ada, kFineTuneKind, 5);  // the highest priority and the oldest
    const auto lora = queueTraining(bob, kLoraFineTuneKind);
    const auto image = queue(ada);
    const auto claimed = claim();
    ASSERT_TRUE(claimed);
    EXPECT_EQ(claimed->id, image);
    EXPECT_FALSE(claim()) << "only trainings are left, and a generation worker must not take them";
    EXPECT_EQ(status(training), JobStatus::Queued);

    auto claimTraining = [&] {
        return jobs.claimNext(
            kNow, [](std::int64_t) { return 1; }, JobFamily::Training);
    };
    const auto first = claimTraining();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->id, training);
    EXPECT_EQ(first->kind, "fine_tune");
    // Ada's running generation does not hold her training slot, nor the other way round.
    const auto second = claimTraining();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->id, lora);
    EXPECT_FALSE(claimTraining());
}

TEST_F(JobRepositoryTest, EachFamilyHasItsOwnQueueCountsHistoryAndRecovery) {
    const auto training = queueTraining(ada);
    const auto image = queue(ada);
    EXPECT_EQ(jobs.activeCount(ada), 1);
    EXPECT_EQ(jobs.activeCount(ada, JobFamily::Training), 1);
    EXPECT_EQ(jobs.queuedIds(), std::vector<std::int64_t>{image});
    EXPECT_EQ(jobs.queuedIds(JobFamily::Training), std::vector<std::int64_t>{training});
    EXPECT_EQ(jobs.queueStanding(*jobs.find(image)).position, 0);
    ASSERT_EQ(jobs.listForUser(ada, 10, 0, false).size(), 1u);
    EXPECT_EQ(jobs.listForUser(ada, 10, 0, false, JobFamily::Training).at(0).id, training);
    EXPECT_EQ(jobs.countForUser(ada, JobFamily::Training), 1);

    claim();
    jobs.claimNext(
        kNow, [](std::int64_t) { return 1; }, JobFamily::Training);
    EXPECT_TRUE(jobs.requeueRunning(3).empty());
    EXPECT_EQ(status(image), JobStatus::Queued);
    EXPECT_EQ(status(training), JobStatus::Running) << "the generation runner's recovery leaves trainings alone";
    jobs.requeueRunning(3, JobFamily::Training);
    EXPECT_EQ(status(training), JobStatus::Queued);
    EXPECT_EQ(jobs.cancelQueuedOf(ada, kNow, JobFamily::Training), std::vector<std::int64_t>{training});
    EXPECT_EQ(status(image), JobStatus::Queued);
}

TEST_F(JobRepositoryTest, ATrainingRunsOnlyOnItsHomeAndOnlyItsHomeRequeuesIt) {
    auto training = [&](const std::string& home) { return queueTraining(ada, kFineTuneKind, 0, home); };
    const auto onA = training("host-a:/var/lib/easel");
    const auto anywhere = training("");
    EXPECT_EQ(jobs.find(onA)->home, "host-a:/var/lib/easel");
    EXPECT_EQ(jobs.find(anywhere)->home, "");
    auto claimAs = [&](const std::string& home) {
        return jobs.claimNext(
            kNow, [](std::int64_t) { return 10; }, JobFamily::Training, {}, std::nullopt, home);
    };
    // Server B claims the training of no home, never A's; the claim makes it B's.
    const auto b = claimAs("host-b:/var/lib/easel");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->id, anywhere);
    EXPECT_EQ(b->home, "host-b:/var/lib/easel");
    EXPECT_EQ(jobs.find(anywhere)->home, "host-b:/var/lib/easel");
    EXPECT_FALSE(claimAs("host-b:/var/lib/easel"));
    const auto a = claimAs("host-a:/var/lib/easel");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->id, onA);
    // B restarts: it re-queues only its own home's running trainings, and A's keeps running.
    EXPECT_TRUE(jobs.requeueRunning(3, JobFamily::Training, "host-b:/var/lib/easel").empty());
    EXPECT_EQ(status(onA), JobStatus::Running);
    EXPECT_EQ(status(anywhere), JobStatus::Queued);
    jobs.requeueRunning(3, JobFamily::Training, "host-a:/var/lib/easel");
    EXPECT_EQ(status(onA), JobStatus::Queued);
}

// Trainings claimed with a lease: back to the queue (home kept) once it runs out, by any server but the
// holder; those claimed without one never; one that used its attempts is returned instead.
TEST_F(JobRepositoryTest, ExpiredTrainingLeasesGoBackToTheQueueAndAQueuedJobsHomeCanBeCleared) {
    auto training = [&](const std::string& home) { return queueTraining(ada, kFineTuneKind, 0, home); };
    const auto leased = training("host-a:/srv");
    const auto unleased = training("host-a:/srv");
    auto claim = [&](const Lease& lease) {
        return jobs.claimNext(
            kNow, [](std::int64_t) { return 10; }, JobFamily::Training, lease, std::nullopt, "host-a:/srv");
    };
    ASSERT_EQ(claim({"worker-a", 10})->id, leased);
    ASSERT_EQ(claim({})->id, unleased);
    std::vector<JobRow> requeued;
    EXPECT_TRUE(jobs.requeueExpiredLeases(kNow + 5, 3, "worker-b", JobFamily::Training, requeued).empty());
    EXPECT_TRUE(requeued.empty());  // the lease holds
    EXPECT_TRUE(jobs.requeueExpiredLeases(kNow + 11, 3, "worker-a", JobFamily::Training, requeued).empty());
    EXPECT_TRUE(requeued.empty());           // the holder's own
    EXPECT_FALSE(jobs.setHome(leased, ""));  // only a queued job's home changes
    EXPECT_TRUE(jobs.requeueExpiredLeases(kNow + 11, 3, "worker-b", JobFamily::Training, requeued).empty());
    ASSERT_EQ(requeued.size(), 1u);
    EXPECT_EQ(requeued[0].id, leased);
    EXPECT_EQ(status(leased), JobStatus::Queued);
    EXPECT_EQ(status(unleased), JobStatus::Running);
    EXPECT_EQ(jobs.find(leased)->home, "host-a:/srv");
    EXPECT_TRUE(jobs.setHome(leased, ""));
    EXPECT_EQ(jobs.find(leased)->home, "");

    // Claimed again (by anyone now) and expired again with its attempts used: returned, not re-queued.
    const auto again = jobs.claimNext(
        kNow + 20, [](std::int64_t) { return 10; }, JobFamily::Training, {"worker-b", 10}, std::nullopt, "host-b:/srv");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, leased);
    EXPECT_EQ(again->attempts, 2);
    requeued.clear();
    const auto exhausted = jobs.requeueExpiredLeases(kNow + 31, 2, "worker-c", JobFamily::Training, requeued);
    ASSERT_EQ(exhausted.size(), 1u);
    EXPECT_EQ(exhausted[0].id, leased);
    EXPECT_TRUE(requeued.empty());
    EXPECT_EQ(status(leased), JobStatus::Running);
}

TEST_F(JobRepositoryTest, TrainingsChargedCountQueuedRunningAndSucceededOnes) {
    const auto queued = queueTraining(ada);
    const auto running = queueTraining(ada, kLoraFineTuneKind);
    const auto succeeded = queueTraining(ada);
    const auto failed = queueTraining(ada);
    const auto cancelled = queueTraining(ada);
    queue(ada);  // a generation job is no training
    queueTraining(bob);
    while (jobs.claimNext(
        kNow, [](std::int64_t) { return 10; }, JobFamily::Training)) {
    }
    jobs.requeue(queued);
    ASSERT_TRUE(jobs.markSucceeded(succeeded, R"({"loss_curve":[[1,0.5]]})", 1.0, kNow));
    ASSERT_TRUE(jobs.markFailed(failed, "out of memory", kNow));
    ASSERT_TRUE(jobs.markCancelled(cancelled, kNow));
    EXPECT_EQ(status(queued), JobStatus::Queued);
    EXPECT_EQ(status(running), JobStatus::Running);
    EXPECT_EQ(jobs.trainingsCharged(ada), 3);
    EXPECT_EQ(jobs.trainingsCharged(bob), 1);

    jobs.setMeta(succeeded, R"({"deleted":true})");
    EXPECT_EQ(jobs.find(succeeded)->meta, R"({"deleted":true})");
    EXPECT_EQ(jobs.trainingsCharged(ada), 3) << "deleting the trained model gives no training back";
}

}  // namespace
}  // namespace easel::storage
