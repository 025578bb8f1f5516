#pragma once
// A BlobStore whose disk fills up: the first `room` writes go to a real FileBlobStore, every later one
// fails the way a full disk does (std::system_error with ENOSPC, nothing written). Reads, removals and
// listings are the real store's, so tests can check that nothing was left behind.

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "storage/blob_store.h"

namespace easel::testing {

class FullDiskBlobStore final : public storage::BlobStore {
public:
    FullDiskBlobStore(std::filesystem::path root, int room) : m_store(std::move(root)), m_room(room) {}

    void put(std::int64_t owner, const std::string& name, const std::vector<unsigned char>& bytes) override {
        if (m_room <= 0) {
            ++m_refused;
            throw std::system_error(ENOSPC, std::generic_category(), "cannot write /srv/easel/files/" + name);
        }
        --m_room;
        m_store.put(owner, name, bytes);
    }
    std::optional<std::vector<unsigned char>> get(std::int64_t owner, const std::string& name) const override {
        return m_store.get(owner, name);
    }
    void remove(std::int64_t owner, const std::string& name) override { m_store.remove(owner, name); }
    void removeOwner(std::int64_t owner) override { m_store.removeOwner(owner); }
    std::size_t count(std::int64_t owner) const override { return m_store.count(owner); }
    std::vector<std::int64_t> owners() const override { return m_store.owners(); }
    std::vector<storage::StoredBlob> list(std::int64_t owner) const override { return m_store.list(owner); }
    std::string describe() const override { return m_store.describe(); }

    void setRoom(int writes) { m_room = writes; }
    int refused() const { return m_refused; }

private:
    storage::FileBlobStore m_store;
    int m_room;
    int m_refused = 0;
};

}  // namespace easel::testing
