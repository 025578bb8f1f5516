#include "storage/blob_store.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace easel::storage {

void checkBlobName(const std::string& name) {
    if (name.empty() || name.find_first_of("/\\") != std::string::npos || name.front() == '.') {
        throw std::invalid_argument("bad blob name");
    }
}

FileBlobStore::FileBlobStore(std::filesystem::path root) : m_root(std::move(root)) {
    std::filesystem::create_directories(m_root);
}

std::filesystem::path FileBlobStore::pathFor(std::int64_t owner, const std::string& name) const {
    checkBlobName(name);
    return m_root / std::to_string(owner) / name;
}

namespace {

// fsync of a file or folder; a rename is durable only once its folder is synced too.
bool syncPath(const std::filesystem::path& path, bool directory) {
    const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

void FileBlobStore::put(std::int64_t owner, const std::string& name, const std::vector<unsigned char>& bytes) {
    const auto path = pathFor(owner, name);
    std::filesystem::create_directories(path.parent_path());
    const auto tmp = path.string() + ".tmp";
    // A std::system_error carrying errno, so that callers can tell a full disk (ENOSPC) from other failures.
    auto fail = [&](int err) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        throw std::system_error(err, std::generic_category(), "cannot write " + path.string());
    };
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail(errno);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = n < 0 ? errno : ENOSPC;  // a zero-byte write makes no progress: the disk is full
            ::close(fd);
            fail(err);
        }
        done += static_cast<std::size_t>(n);
    }
    // On disk before the database row that points at it commits (the caller commits after put()).
    const int syncErr = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    if (syncErr != 0) fail(syncErr);
    std::filesystem::rename(tmp, path);
    syncPath(path.parent_path(), true);
}

std::optional<std::uint64_t> FileBlobStore::freeBytes() const {
    struct statvfs st {};
    if (::statvfs(m_root.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

std::optional<std::vector<unsigned char>> FileBlobStore::get(std::int64_t owner, const std::string& name) const {
    std::ifstream in(pathFor(owner, name), std::ios::binary);
    if (!in) return std::nullopt;
    return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

void FileBlobStore::remove(std::int64_t owner, const std::string& name) {
    std::error_code ec;
    std::filesystem::remove(pathFor(owner, name), ec);
}

void FileBlobStore::removeOwner(std::int64_t owner) {
    std::error_code ec;
    std::filesystem::remove_all(m_root / std::to_string(owner), ec);
    if (ec)
        throw std::runtime_error("cannot remove " + (m_root / std::to_string(owner)).string() + ": " + ec.message());
}

std::size_t FileBlobStore::count(std::int64_t owner) const {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(m_root / std::to_string(owner), ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++n;
    }
    return n;
}

std::vector<std::int64_t> FileBlobStore::owners() const {
    std::vector<std::int64_t> out;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(m_root, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        const auto name = it->path().filename().string();
        std::int64_t id = 0;
        const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), id);
        std::error_code dirEc;
        if (err == std::errc() && end == name.data() + name.size() && it->is_directory(dirEc)) out.push_back(id);
    }
    return out;
}

std::vector<StoredBlob> FileBlobStore::list(std::int64_t owner) const {
    std::vector<StoredBlob> out;
    std::error_code ec;
    const auto now = std::filesystem::file_time_type::clock::now();
    for (auto it = std::filesystem::directory_iterator(m_root / std::to_string(owner), ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        std::error_code fileEc;
        const auto name = it->path().filename().string();
        if (!it->is_regular_file(fileEc) || name.front() == '.') continue;  // not a name put() writes
        const auto written = it->last_write_time(fileEc);
        if (fileEc) continue;
        out.push_back({name, std::chrono::duration_cast<std::chrono::seconds>(now - written).count()});
    }
    return out;
}

}  // namespace easel::storage
