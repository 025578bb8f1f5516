// The image quota in one place: charges are exact at the limit, a refund commits with the status
// change that causes it (both or neither), and only the call that ends a job refunds it.

#include "quota/quota_ledger.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "storage/job_repository.h"
#include "test_database.h"

namespace easel::quota {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

class QuotaLedgerTest : public ::testing::Test {
protected:
    std::int64_t queueJob(std::int64_t userId, int images) {
        storage::JobRow row;
        row.userId = userId;
        row.kind = "text2img";
        row.images = images;
        row.request = R"({"prompt":"p"})";
        row.createdAt = kNow;
        return jobs.insert(row);
    }
    storage::JobStatus status(std::int64_t id) { return jobs.find(id).value().status; }

    testing::TestDatabase database;
    const storage::Database& db = database.db();
    storage::JobRepository jobs{db};
    QuotaLedger ledger{db};
    std::int64_t ada = testing::addUser(db, "ada@example.com");
};

TEST_F(QuotaLedgerTest, ChargesUpToTheLimitExactlyAndNotOneImageMore) {
    EXPECT_TRUE(ledger.charge(ada, 18, 20));
    EXPECT_TRUE(ledger.charge(ada, 2, 20));
    EXPECT_FALSE(ledger.charge(ada, 1, 20));
    EXPECT_EQ(testing::imagesUsed(db, ada), 20);
    EXPECT_TRUE(ledger.charge(ada, 500, std::nullopt));  // a plan without a limit
    EXPECT_EQ(testing::imagesUsed(db, ada), 520);
}

TEST_F(QuotaLedgerTest, ARefundComesWithTheStatusChangeAndOnlyOnce) {
    ASSERT_TRUE(ledger.charge(ada, 3, 20));
    const auto id = queueJob(ada, 3);
    EXPECT_TRUE(ledger.endWithRefund(ada, 3, [&] { return jobs.cancelIfQueued(id, kNow); }));
    EXPECT_EQ(status(id), storage::JobStatus::Cancelled);
    EXPECT_EQ(testing::imagesUsed(db, ada), 0);
    // A second ending (a failure racing the cancel) changes nothing and gives nothing back.
    ASSERT_TRUE(ledger.charge(ada, 5, 20));
    EXPECT_FALSE(ledger.endWithRefund(ada, 3, [&] { return jobs.markFailed(id, "late", kNow); }));
    EXPECT_EQ(status(id), storage::JobStatus::Cancelled);
    EXPECT_EQ(testing::imagesUsed(db, ada), 5);
}

TEST_F(QuotaLedgerTest, AFailedRefundRollsTheStatusChangeBack) {
    ASSERT_TRUE(ledger.charge(ada, 2, 20));
    const auto id = queueJob(ada, 2);
    // The refund's UPDATE fails (as a full disk would make it): the cancel must not commit alone.
    const bool postgres = db.dialect() == storage::Dialect::PostgreSQL;
    db.exec(postgres ? "CREATE FUNCTION refuse_refund() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$; "
                       "CREATE TRIGGER refuse_refund BEFORE UPDATE OF images_used ON users FOR EACH ROW "
                       "WHEN (NEW.images_used < OLD.images_used) EXECUTE FUNCTION refuse_refund()"
                     : "CREATE TRIGGER refuse_refund BEFORE UPDATE OF images_used ON users "
                       "WHEN NEW.images_used < OLD.images_used BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    EXPECT_THROW(ledger.endWithRefund(ada, 2, [&] { return jobs.cancelIfQueued(id, kNow); }), std::exception);
    EXPECT_EQ(status(id), storage::JobStatus::Queued);
    EXPECT_EQ(testing::imagesUsed(db, ada), 2);
    db.exec(postgres ? "DROP TRIGGER refuse_refund ON users" : "DROP TRIGGER refuse_refund");
    EXPECT_TRUE(ledger.endWithRefund(ada, 2, [&] { return jobs.cancelIfQueued(id, kNow); }));
    EXPECT_EQ(testing::imagesUsed(db, ada), 0);
}

TEST_F(QuotaLedgerTest, DeliveredImagesEnterTheUsageLedgerWithTheSuccess) {
    ASSERT_TRUE(ledger.charge(ada, 2, 20));
    const auto id = queueJob(ada, 2);
    const auto claimed = jobs.claimNext(kNow, [](std::int64_t) { return 1; });
    ASSERT_TRUE(claimed.has_value());
    EXPECT_TRUE(ledger.completeWithUsage(ada, id, "text2img", 2, kNow,
                                         [&] { return jobs.markSucceeded(id, "{}", 1.5, kNow); }));
    ASSERT_EQ(ledger.usageCount(ada), 1);
    const auto rows = ledger.usage(ada, 10, 0);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].requestId, id);
    EXPECT_EQ(rows[0].images, 2);
    EXPECT_EQ(rows[0].kind, "text2img");
    EXPECT_EQ(testing::imagesUsed(db, ada), 2);  // the charge stands
    // A job that is no longer running (cancelled meanwhile) records no usage.
    const auto other = queueJob(ada, 1);
    ASSERT_TRUE(jobs.cancelIfQueued(other, kNow));
    EXPECT_FALSE(ledger.completeWithUsage(ada, other, "text2img", 1, kNow,
                                          [&] { return jobs.markSucceeded(other, "{}", 1.0, kNow); }));
    EXPECT_EQ(ledger.usageCount(ada), 1);
}

// Runs `work` in a child process on its own connection to the same database file; the child kills
// itself (SIGKILL, no cleanup, no rollback statement) where `work` calls the die() it is given.
// True when the child died that way.
template <typename Work>
bool diesWithSigkill(const std::filesystem::path& dbPath, Work work) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        try {
            storage::Database childDb(dbPath);
            work(childDb, [] { ::raise(SIGKILL); });
        } catch (...) {
        }
        ::_exit(3);  // not reached when the kill happened
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return false;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST_F(QuotaLedgerTest, AProcessKilledBetweenTheStatusChangeAndTheRefundLeavesNeither) {
    ASSERT_TRUE(ledger.charge(ada, 3, 20));
    const auto id = queueJob(ada, 3);
    ASSERT_TRUE(jobs.claimNext(kNow, [](std::int64_t) { return 1; }).has_value());
    const auto user = ada;
    ASSERT_TRUE(diesWithSigkill(database.path(), [&](const storage::Database& childDb, auto die) {
        storage::JobRepository childJobs{childDb};
        QuotaLedger{childDb}.endWithRefund(user, 3, [&] {
            const bool changed = childJobs.markFailed(id, "the model ran out of memory", kNow);
            die();  // the status change is made, the refund is not
            return changed;
        });
    }));
    // The transaction died with the process: the job still runs and its charge stands.
    EXPECT_EQ(status(id), storage::JobStatus::Running);
    EXPECT_EQ(testing::imagesUsed(db, ada), 3);
    // Whoever ends it next (recovery after the restart) does both, once.
    EXPECT_TRUE(ledger.endWithRefund(ada, 3, [&] { return jobs.markFailed(id, "interrupted", kNow); }));
    EXPECT_EQ(status(id), storage::JobStatus::Failed);
    EXPECT_EQ(testing::imagesUsed(db, ada), 0);
    EXPECT_FALSE(ledger.endWithRefund(ada, 3, [&] { return jobs.markFailed(id, "again", kNow); }));
    EXPECT_EQ(testing::imagesUsed(db, ada), 0);
}

TEST_F(QuotaLedgerTest, AProcessKilledBetweenSuccessAndTheUsageRowLeavesTheJobRunning) {
    ASSERT_TRUE(ledger.charge(ada, 2, 20));
    const auto id = queueJob(ada, 2);
    ASSERT_TRUE(jobs.claimNext(kNow, [](std::int64_t) { return 1; }).has_value());
    const auto user = ada;
    ASSERT_TRUE(diesWithSigkill(database.path(), [&](const storage::Database& childDb, auto die) {
        storage::JobRepository childJobs{childDb};
        QuotaLedger{childDb}.completeWithUsage(user, id, "text2img", 2, kNow, [&] {
            const bool changed = childJobs.markSucceeded(id, "{}", 1.0, kNow);
            die();
            return changed;
        });
    }));
    EXPECT_EQ(status(id), storage::JobStatus::Running);  // re-run on restart, not a success without a record
    EXPECT_EQ(ledger.usageCount(ada), 0);
    EXPECT_EQ(testing::imagesUsed(db, ada), 2);
}

TEST_F(QuotaLedgerTest, UsagePagesAreClampedToSaneBounds) {
    for (int i = 0; i < 3; ++i) {
        const auto id = queueJob(ada, 1);
        ASSERT_TRUE(jobs.claimNext(kNow, [](std::int64_t) { return 1; }).has_value());
        ASSERT_TRUE(ledger.completeWithUsage(ada, id, "text2img", 1, kNow,
                                             [&] { return jobs.markSucceeded(id, "{}", 1.0, kNow); }));
    }
    EXPECT_EQ(ledger.usage(ada, 0, 0).size(), 1u);    // a limit below 1 lists one row
    EXPECT_EQ(ledger.usage(ada, 10, -5).size(), 3u);  // a negative offset starts at the newest
    EXPECT_EQ(ledger.usage(ada, 10, 2).size(), 1u);
}

}  // namespace
}  // namespace easel::quota
