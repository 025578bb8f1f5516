// The usage ledger: one row per finished job, listed newest first, per account.

#include <gtest/gtest.h>

#include "storage/user_repository.h"
#include "test_database.h"

namespace easel::storage {
namespace {

class UsageRepositoryTest : public ::testing::Test {
protected:
    testing::TestDatabase database;
    const Database& db = database.db();
    UsageRepository usage{db};
    std::int64_t ada = testing::addUser(db, "ada@example.com");
    std::int64_t bob = testing::addUser(db, "bob@example.com");
};

TEST_F(UsageRepositoryTest, AnAccountWithoutUsageHasNoRows) {
    EXPECT_EQ(usage.count(ada), 0);
    EXPECT_TRUE(usage.list(ada, 10, 0).empty());
}

TEST_F(UsageRepositoryTest, RowsKeepWhatWasAddedAndListNewestFirst) {
    usage.add(ada, 11, "text2img", 2, 1000);
    usage.add(ada, std::nullopt, "img2img", 1, 1010);
    const auto rows = usage.list(ada, 10, 0);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].kind, "img2img");
    EXPECT_EQ(rows[0].requestId, std::nullopt);
    EXPECT_EQ(rows[0].images, 1);
    EXPECT_EQ(rows[0].createdAt, 1010);
    EXPECT_EQ(rows[1].kind, "text2img");
    EXPECT_EQ(rows[1].requestId, 11);
    EXPECT_EQ(rows[1].images, 2);
    EXPECT_GT(rows[0].id, rows[1].id);
}

TEST_F(UsageRepositoryTest, ListingPagesWithLimitAndOffset) {
    for (int i = 0; i < 5; ++i) usage.add(ada, i, "text2img", 1, 1000 + i);
    EXPECT_EQ(usage.count(ada), 5);
    const auto page = usage.list(ada, 2, 1);
    ASSERT_EQ(page.size(), 2u);
    EXPECT_EQ(page[0].requestId, 3);
    EXPECT_EQ(page[1].requestId, 2);
    EXPECT_TRUE(usage.list(ada, 2, 5).empty());
}

TEST_F(UsageRepositoryTest, EachAccountSeesOnlyItsOwnRows) {
    usage.add(ada, 1, "text2img", 1, 1000);
    usage.add(bob, 2, "text2img", 4, 1000);
    usage.add(bob, 3, "text2img", 4, 1001);
    EXPECT_EQ(usage.count(ada), 1);
    EXPECT_EQ(usage.count(bob), 2);
    EXPECT_EQ(usage.list(ada, 10, 0).at(0).requestId, 1);
}

}  // namespace
}  // namespace easel::storage
