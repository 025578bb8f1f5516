// The users table: look-ups, the atomic quota charge and its refund, and the queries the sweeper uses.

#include "storage/user_repository.h"

#include <gtest/gtest.h>

#include "test_database.h"

namespace easel::storage {
namespace {

using testing::addUser;
using testing::imagesUsed;
using testing::userRow;

class UserRepositoryTest : public ::testing::Test {
protected:
    testing::TestDatabase database;
    const Database& db = database.db();
    UserRepository users{db};
};

TEST_F(UserRepositoryTest, AnInsertedUserIsFoundByIdEmailAndKeyHash) {
    auto row = userRow("ada@example.com", "basic");
    row.isAdmin = true;
    const auto id = users.insert(row);
    const auto byId = users.findById(id);
    ASSERT_TRUE(byId);
    EXPECT_EQ(byId->email, "ada@example.com");
    EXPECT_EQ(byId->plan, "basic");
    EXPECT_TRUE(byId->isAdmin);
    EXPECT_EQ(byId->apiKeyHash, row.apiKeyHash);
    EXPECT_EQ(byId->createdAt, row.createdAt);
    EXPECT_EQ(users.findByEmail("ADA@Example.com")->id, id);  // e-mails compare without case
    EXPECT_EQ(users.findByKeyHash(row.apiKeyHash)->id, id);
    EXPECT_FALSE(users.findById(id + 1));
    EXPECT_FALSE(users.findByEmail("bob@example.com"));
}

TEST_F(UserRepositoryTest, ASecondAccountWithTheSameEmailIsRefused) {
    users.insert(userRow("ada@example.com"));
    auto twin = userRow("Ada@Example.com");
    EXPECT_THROW(users.insert(twin), DatabaseError);
    EXPECT_EQ(users.list().size(), 1u);
}

TEST_F(UserRepositoryTest, IdsAreNeverReusedAfterADeletion) {
    const auto first = addUser(db, "a@example.com");
    users.remove(first);
    EXPECT_GT(addUser(db, "b@example.com"), first);
}

TEST_F(UserRepositoryTest, AChargeIsExactAndStopsAtTheLimit) {
    const auto id = addUser(db, "a@example.com");
    EXPECT_TRUE(users.charge(id, 15, 20));
    EXPECT_EQ(imagesUsed(db, id), 15);
    EXPECT_TRUE(users.charge(id, 5, 20));  // exactly the limit is allowed
    EXPECT_EQ(imagesUsed(db, id), 20);
    EXPECT_FALSE(users.charge(id, 1, 20));  // one more is refused and changes nothing
    EXPECT_EQ(imagesUsed(db, id), 20);
    EXPECT_TRUE(users.charge(id, 1000, std::nullopt));  // no limit
    EXPECT_EQ(imagesUsed(db, id), 1020);
}

TEST_F(UserRepositoryTest, AnAccountBeingDeletedCannotBeCharged) {
    const auto id = addUser(db, "a@example.com");
    users.markDeleting(id);
    EXPECT_FALSE(users.charge(id, 1, std::nullopt));
    EXPECT_EQ(imagesUsed(db, id), 0);
    EXPECT_FALSE(users.findByKeyHash(userRow("a@example.com").apiKeyHash));  // its key stops working
    EXPECT_EQ(users.idsMarkedDeleting(), std::vector<std::int64_t>{id});
}

TEST_F(UserRepositoryTest, ARefundGivesImagesBackButNeverBelowZero) {
    const auto id = addUser(db, "a@example.com", "free", 5);
    users.refund(id, 3);
    EXPECT_EQ(imagesUsed(db, id), 2);
    users.refund(id, 10);
    EXPECT_EQ(imagesUsed(db, id), 0);
}

TEST_F(UserRepositoryTest, PlanPasswordAndKeyUpdatesAreStored) {
    const auto id = addUser(db, "a@example.com");
    users.setPlan(id, "premium");
    users.setPasswordHash(id, "new-hash");
    users.setApiKey(id, {4, 5, 6}, {7, 8});
    const auto row = users.findById(id);
    EXPECT_EQ(row->plan, "premium");
    EXPECT_EQ(row->passwordHash, "new-hash");
    EXPECT_EQ(row->apiKeyHash, (Blob{4, 5, 6}));
    EXPECT_EQ(row->apiKeySealed, (Blob{7, 8}));
    EXPECT_FALSE(users.findByKeyHash(userRow("a@example.com").apiKeyHash));  // the old key's hash is gone
}

TEST_F(UserRepositoryTest, TouchOnlyMovesTheLastActivityForward) {
    const auto id = addUser(db, "a@example.com");  // last active at 1'700'000'000
    users.touch(id, 1'700'000'500);
    EXPECT_EQ(users.findById(id)->lastActiveAt, 1'700'000'500);
    users.touch(id, 1'700'000'100);
    EXPECT_EQ(users.findById(id)->lastActiveAt, 1'700'000'500);
}

TEST_F(UserRepositoryTest, InactiveAccountsAreFoundByPlanButNeverAdmins) {
    const auto idleFree = addUser(db, "idle@example.com", "free");
    addUser(db, "idle-basic@example.com", "basic");
    auto admin = userRow("root@example.com", "free");
    admin.isAdmin = true;
    users.insert(admin);
    const auto active = addUser(db, "active@example.com", "free");
    users.touch(active, 1'800'000'000);
    EXPECT_EQ(users.inactiveSince(1'750'000'000, {"free"}), std::vector<std::int64_t>{idleFree});
}

TEST_F(UserRepositoryTest, SessionsAreValidUntilTheyExpireAndCanBeEndedPerUser) {
    const auto id = addUser(db, "a@example.com");
    const SessionRepository sessions{db};
    sessions.insert({1}, id, 100, 200);
    sessions.insert({2}, id, 100, 200);
    sessions.insert({3}, id, 100, 200);
    EXPECT_EQ(sessions.userFor({1}, 199), id);
    EXPECT_FALSE(sessions.userFor({1}, 200));
    sessions.remove({1});
    EXPECT_FALSE(sessions.userFor({1}, 150));
    sessions.removeForUser(id, {2});  // every other session ends
    EXPECT_EQ(sessions.userFor({2}, 150), id);
    EXPECT_FALSE(sessions.userFor({3}, 150));
}

}  // namespace
}  // namespace easel::storage
