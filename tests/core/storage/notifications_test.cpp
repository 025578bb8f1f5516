// LISTEN / NOTIFY between servers on PostgreSQL: a notification arrives when the transaction that sent it
// commits, never for one that rolled back; on SQLite notify() is a no-op.

#include "storage/notifications.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "eventually.h"
#include "test_database.h"

namespace easel::storage {
namespace {

using namespace std::chrono_literals;

TEST(Notifications, ANotifyIsHeardWhenItsTransactionCommitsAndNeverWhenItRollsBack) {
    if (!testing::testsUsePostgres()) GTEST_SKIP() << "PostgreSQL only: CTest easel_core_tests_on_postgresql";
    testing::TestDatabase database;
    const auto& db = database.db();
    std::atomic<int> queued{0}, cancels{0};
    NotificationListener listener(database.path().string(), {kJobsQueuedChannel, kCancelChannel},
                                  [&](const std::string& channel) {
                                      if (channel == kJobsQueuedChannel) ++queued;
                                      if (channel == kCancelChannel) ++cancels;
                                  });
    ASSERT_TRUE(testing::eventually([&] { return listener.listening(); }));
    ASSERT_TRUE(testing::eventually([&] { return queued == 1 && cancels == 1; }));  // one look after connecting
    db.transaction([&] {
        notify(db, kJobsQueuedChannel);
        std::this_thread::sleep_for(300ms);
        EXPECT_EQ(queued, 1) << "heard before the commit";
    });
    EXPECT_TRUE(testing::eventually([&] { return queued == 2; }));
    EXPECT_THROW(db.transaction([&] {
        notify(db, kJobsQueuedChannel);
        throw std::runtime_error("rolled back");
    }),
                 std::runtime_error);
    notify(db, kCancelChannel);  // outside a transaction: at once
    EXPECT_TRUE(testing::eventually([&] { return cancels == 2; }));
    EXPECT_EQ(queued, 2) << "a rolled-back notify was delivered";
}

TEST(Notifications, OnSQLiteANotifyDoesNothing) {
    if (testing::testsUsePostgres()) GTEST_SKIP() << "SQLite only";
    testing::TestDatabase database;
    EXPECT_NO_THROW(notify(database.db(), kJobsQueuedChannel));
}

}  // namespace
}  // namespace easel::storage
