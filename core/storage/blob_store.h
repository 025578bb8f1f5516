#pragma once
// Where image bytes live. An interface, so that tests can fail writes; the real one keeps files under
// the data dir, one folder per account, so that purging an account is one folder removal.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace easel::storage {

struct StoredBlob {
    std::string name;
    std::int64_t ageSeconds = 0;  // since it was last written
};

// Names are generated tokens: throws std::invalid_argument for one that could leave the owner's folder
// or prefix (empty, a '/' or '\\', or a leading '.'). Every store checks names with it.
void checkBlobName(const std::string& name);

class BlobStore {
public:
    virtual ~BlobStore() = default;
    // Writes atomically (temporary file + rename) and durably (the file and its folder synced before
    // it returns, so a row committed afterwards never points at a lost file). Throws on failure, a
    // full disk included, leaving nothing behind.
    virtual void put(std::int64_t owner, const std::string& name, const std::vector<unsigned char>& bytes) = 0;
    virtual std::optional<std::vector<unsigned char>> get(std::int64_t owner, const std::string& name) const = 0;
    virtual void remove(std::int64_t owner, const std::string& name) = 0;
    virtual void removeOwner(std::int64_t owner) = 0;
    // Number of stored blobs of the owner (for tests and system details).
    virtual std::size_t count(std::int64_t owner) const = 0;
    // Every owner with a folder, and every blob of one (temporary files of interrupted writes too):
    // for the sweep of files that a crash left without a database row.
    virtual std::vector<std::int64_t> owners() const = 0;
    virtual std::vector<StoredBlob> list(std::int64_t owner) const = 0;
    // Bytes still free where the blobs are written; nullopt when unknown.
    virtual std::optional<std::uint64_t> freeBytes() const { return std::nullopt; }
    // A URL that serves the blob without this server (a pre-signed S3 link), when the store is set
    // to hand those out; nullopt: the server sends the bytes itself.
    virtual bool hasDirectLinks() const { return false; }
    virtual std::optional<std::string> directLink(std::int64_t /*owner*/, const std::string& /*name*/) const {
        return std::nullopt;
    }
    // Where the blobs are, for logs and system details (nothing secret).
    virtual std::string describe() const = 0;
};

class FileBlobStore final : public BlobStore {
public:
    explicit FileBlobStore(std::filesystem::path root);
    void put(std::int64_t owner, const std::string& name, const std::vector<unsigned char>& bytes) override;
    std::optional<std::vector<unsigned char>> get(std::int64_t owner, const std::string& name) const override;
    void remove(std::int64_t owner, const std::string& name) override;
    void removeOwner(std::int64_t owner) override;
    std::size_t count(std::int64_t owner) const override;
    std::vector<std::int64_t> owners() const override;
    std::vector<StoredBlob> list(std::int64_t owner) const override;
    std::optional<std::uint64_t> freeBytes() const override;
    std::string describe() const override { return m_root.string(); }

private:
    std::filesystem::path pathFor(std::int64_t owner, const std::string& name) const;
    std::filesystem::path m_root;
};

}  // namespace easel::storage
