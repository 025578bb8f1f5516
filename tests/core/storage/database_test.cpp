// The SQLite wrapper: transactions commit or roll back as a whole, nested ones join the outer one,
// and bad SQL is a DatabaseError rather than a crash.

#include "storage/database.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "temp_dir.h"

namespace easel::storage {
namespace {

class DatabaseTest : public ::testing::Test {
protected:
    void SetUp() override { db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)"); }
    std::int64_t rows() const {
        const auto l = db.lock();
        auto s = db.statement("SELECT COUNT(*) FROM t");
        return s.step() ? s.int64(0) : -1;
    }
    void insert(const std::string& name) const {
        const auto l = db.lock();
        db.statement("INSERT INTO t (name) VALUES (?)").bindAll(name).run();
    }

    testing::TempDir dir;
    Database db{dir / "test.db"};
};

TEST_F(DatabaseTest, ATransactionCommitsWhenItsFunctionReturns) {
    db.transaction([&] {
        insert("a");
        insert("b");
    });
    EXPECT_EQ(rows(), 2);
}

TEST_F(DatabaseTest, ATransactionRollsBackEverythingWhenItsFunctionThrows) {
    EXPECT_THROW(db.transaction([&] {
        insert("a");
        throw std::runtime_error("midway");
    }),
                 std::runtime_error);
    EXPECT_EQ(rows(), 0);
    insert("after");  // the connection is usable again
    EXPECT_EQ(rows(), 1);
}

TEST_F(DatabaseTest, ANestedTransactionJoinsTheOuterOneAndFallsWithIt) {
    EXPECT_THROW(db.transaction([&] {
        db.transaction([&] { insert("inner"); });
        EXPECT_EQ(rows(), 1);  // visible inside the outer transaction
        throw std::runtime_error("outer fails");
    }),
                 std::runtime_error);
    EXPECT_EQ(rows(), 0);
}

TEST_F(DatabaseTest, ValuesRoundTripThroughBoundParametersIncludingNulls) {
    const Blob bytes{0, 1, 255};
    {
        const auto l = db.lock();
        db.statement("INSERT INTO t (name, score, data) VALUES (?, ?, ?)").bindAll("it's", 2.5, bytes).run();
        db.statement("INSERT INTO t (name) VALUES (?)").bind(1, std::optional<std::string>()).run();
    }
    const auto l = db.lock();
    auto s = db.statement("SELECT name, score, data FROM t ORDER BY id");
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.text(0), "it's");
    EXPECT_DOUBLE_EQ(s.real(1), 2.5);
    EXPECT_EQ(s.blob(2), bytes);
    ASSERT_TRUE(s.step());
    EXPECT_TRUE(s.isNull(0));
    EXPECT_EQ(s.optionalText(0), std::nullopt);
    EXPECT_EQ(s.optionalInt64(1), std::nullopt);
    EXPECT_FALSE(s.step());
}

TEST_F(DatabaseTest, RunReturnsTheNumberOfChangedRows) {
    insert("a");
    insert("b");
    const auto l = db.lock();
    EXPECT_EQ(db.statement("UPDATE t SET score = 1").run(), 2);
    EXPECT_EQ(db.statement("DELETE FROM t WHERE name = 'nobody'").run(), 0);
}

TEST_F(DatabaseTest, BadSQLIsADatabaseError) {
    const auto l = db.lock();
    EXPECT_THROW(db.statement("SELEKT 1"), DatabaseError);
    EXPECT_THROW(db.exec("INSERT INTO missing VALUES (1)"), DatabaseError);
}

TEST_F(DatabaseTest, TheSchemaVersionIsStoredInTheFile) {
    EXPECT_EQ(db.schemaVersion(), 0);
    db.setSchemaVersion(7);
    EXPECT_EQ(Database(dir / "test.db").schemaVersion(), 7);
}

TEST(Database, AFileThatCannotBeCreatedIsADatabaseError) {
    testing::TempDir dir;
    EXPECT_THROW(Database(dir / "no" / "such" / "folder" / "x.db"), DatabaseError);
}

}  // namespace
}  // namespace easel::storage
