// The file blob store: bytes in one folder per owner, written through a temporary file, and the
// listings the orphan sweep relies on.

#include "storage/blob_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "temp_dir.h"

namespace easel::storage {
namespace {

using Bytes = std::vector<unsigned char>;

class FileBlobStoreTest : public ::testing::Test {
protected:
    std::vector<std::string> names(std::int64_t owner) const {
        std::vector<std::string> out;
        for (const auto& b : blobs.list(owner)) out.push_back(b.name);
        std::sort(out.begin(), out.end());
        return out;
    }

    testing::TempDir dir;
    FileBlobStore blobs{dir / "files"};
};

TEST_F(FileBlobStoreTest, WrittenBytesReadBackExactly) {
    const Bytes png{0x89, 'P', 'N', 'G', 0, 255};
    blobs.put(7, "a.png", png);
    EXPECT_EQ(blobs.get(7, "a.png"), png);
    EXPECT_TRUE(std::filesystem::exists(dir / "files" / "7" / "a.png"));
    blobs.put(7, "empty", {});
    EXPECT_EQ(blobs.get(7, "empty"), Bytes{});
}

TEST_F(FileBlobStoreTest, AMissingBlobIsNothingRatherThanAnError) {
    EXPECT_EQ(blobs.get(7, "nope.png"), std::nullopt);
    EXPECT_EQ(blobs.count(7), 0u);
    EXPECT_NO_THROW(blobs.remove(7, "nope.png"));
    EXPECT_NO_THROW(blobs.removeOwner(7));
}

TEST_F(FileBlobStoreTest, AnOverwriteReplacesTheBytesAndLeavesNoTemporaryFile) {
    blobs.put(7, "a.png", {1, 2, 3});
    blobs.put(7, "a.png", {4});
    EXPECT_EQ(blobs.get(7, "a.png"), Bytes{4});
    EXPECT_EQ(names(7), std::vector<std::string>{"a.png"});
}

TEST_F(FileBlobStoreTest, RemoveDeletesOneBlobAndRemoveOwnerAllOfThem) {
    blobs.put(7, "a.png", {1});
    blobs.put(7, "b.png", {2});
    blobs.put(8, "c.png", {3});
    blobs.remove(7, "a.png");
    EXPECT_EQ(blobs.get(7, "a.png"), std::nullopt);
    EXPECT_EQ(blobs.count(7), 1u);
    blobs.removeOwner(7);
    EXPECT_EQ(blobs.count(7), 0u);
    EXPECT_FALSE(std::filesystem::exists(dir / "files" / "7"));
    EXPECT_EQ(blobs.get(8, "c.png"), Bytes{3});
}

TEST_F(FileBlobStoreTest, NamesThatCouldLeaveTheOwnersFolderAreRefused) {
    for (const std::string bad : {"", "../x", "a/b", "a\\b", ".hidden", ".."}) {
        EXPECT_THROW(blobs.put(7, bad, {1}), std::invalid_argument) << bad;
        EXPECT_THROW(blobs.get(7, bad), std::invalid_argument) << bad;
    }
    EXPECT_EQ(blobs.owners(), std::vector<std::int64_t>{});
}

TEST_F(FileBlobStoreTest, OwnersAreTheNumberedFoldersOnly) {
    blobs.put(3, "a", {1});
    blobs.put(12, "b", {1});
    std::filesystem::create_directories(dir / "files" / "not-an-owner");
    dir.write("files/99", "a file, not a folder");
    auto owners = blobs.owners();
    std::sort(owners.begin(), owners.end());
    EXPECT_EQ(owners, (std::vector<std::int64_t>{3, 12}));
}

TEST_F(FileBlobStoreTest, TheListingShowsTemporaryFilesOfInterruptedWritesWithTheirAge) {
    blobs.put(7, "a.png", {1});
    dir.write("files/7/b.png.tmp", "half written");  // what a crash mid-put leaves
    dir.write("files/7/.hidden", "not ours");
    EXPECT_EQ(names(7), (std::vector<std::string>{"a.png", "b.png.tmp"}));
    std::filesystem::last_write_time(dir / "files" / "7" / "b.png.tmp",
                                     std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
    for (const auto& b : blobs.list(7)) {
        if (b.name == "a.png") {
            EXPECT_LT(b.ageSeconds, 60);
        } else {
            EXPECT_NEAR(static_cast<double>(b.ageSeconds), 7200.0, 60.0);
        }
    }
}

TEST_F(FileBlobStoreTest, AFailedWriteThrowsAndLeavesNothingBehind) {
    // The owner's folder cannot be created where a file already has its name.
    dir.write("files/5", "in the way");
    EXPECT_THROW(blobs.put(5, "a.png", {1}), std::exception);
    EXPECT_EQ(blobs.list(5).size(), 0u);
}

}  // namespace
}  // namespace easel::storage
