// The schema migrations: a fresh file gets every table, a second run changes nothing, and a database
// from a newer server is refused rather than guessed at.

#include "storage/migrations.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "storage/job_repository.h"
#include "test_database.h"

namespace easel::storage {
namespace {

using testing::TempDir;
using testing::TestDatabase;

std::set<std::string> tables(const Database& db) {
    const auto l = db.lock();
    auto s = db.statement("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
    std::set<std::string> out;
    while (s.step()) out.insert(s.text(0));
    return out;
}

TEST(Migrations, AFreshDatabaseGetsEveryTableAtTheLatestVersion) {
    TempDir dir;
    Database db(dir / "easel.db");
    EXPECT_EQ(db.schemaVersion(), 0);
    migrate(db);
    EXPECT_EQ(db.schemaVersion(), latestSchemaVersion());
    EXPECT_EQ(tables(db),
              (std::set<std::string>{"users", "sessions", "usage", "jobs", "images", "uploads", "workers",
                                     "job_progress", "model_installs", "model_install_states", "rate_windows"}));
}

TEST(Migrations, RunningThemAgainKeepsTheVersionAndTheRows) {
    TestDatabase database;
    const auto id = testing::addUser(database.db(), "kept@example.com");
    migrate(database.db());
    migrate(database.db());
    EXPECT_EQ(database.db().schemaVersion(), latestSchemaVersion());
    const auto row = UserRepository(database.db()).findById(id);
    ASSERT_TRUE(row);
    EXPECT_EQ(row->email, "kept@example.com");
}

TEST(Migrations, AReopenedFileIsAlreadyUpToDate) {
    TempDir dir;
    {
        Database db(dir / "easel.db");
        migrate(db);
        testing::addUser(db, "persisted@example.com");
    }
    Database again(dir / "easel.db");
    EXPECT_EQ(again.schemaVersion(), latestSchemaVersion());
    migrate(again);
    EXPECT_EQ(UserRepository(again).list().size(), 1u);
}

TEST(Migrations, ADatabaseFromANewerServerIsRefused) {
    TestDatabase database;
    database.db().setSchemaVersion(latestSchemaVersion() + 1);
    EXPECT_THROW(migrate(database.db()), DatabaseError);
    EXPECT_EQ(database.db().schemaVersion(), latestSchemaVersion() + 1);
}

TEST(Migrations, DeletingAUserCascadesToEverythingItOwns) {
    TestDatabase database;
    const auto& db = database.db();
    const auto id = testing::addUser(db, "gone@example.com");
    JobRepository jobs(db);
    JobRow job;
    job.userId = id;
    job.kind = "text2img";
    job.images = 1;
    job.request = "{}";
    const auto jobId = jobs.insert(job);
    jobs.insertImage({0, jobId, id, 0, "tok", 100}, 1);
    jobs.insertUpload(id, "upload-1", 1, 100);
    UsageRepository{db}.add(id, jobId, "text2img", 1, 1);
    SessionRepository{db}.insert({9, 9}, id, 1, 100);

    UserRepository(db).remove(id);
    EXPECT_FALSE(jobs.find(jobId));
    EXPECT_TRUE(jobs.imagesOf(jobId).empty());
    EXPECT_FALSE(jobs.uploadOwner("upload-1", 0));
    EXPECT_EQ(UsageRepository{db}.count(id), 0);
    EXPECT_FALSE(SessionRepository{db}.userFor({9, 9}, 0));
}

}  // namespace
}  // namespace easel::storage
