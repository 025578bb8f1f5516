#include "inference/loading/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace easel::inference {
namespace {

struct DTypeInfo {
    DType dtype;
    std::string_view name;
    std::size_t size;
};

constexpr std::array<DTypeInfo, 15> kDTypes{{
    {DType::Bool, "BOOL", 1},
    {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},
    {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},
    {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
    {DType::F8E4M3, "F8_E4M3", 1},
    {DType::F8E5M2, "F8_E5M2", 1},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
}};

const DTypeInfo& infoOf(DType dtype) {
    for (const auto& info : kDTypes) {
        if (info.dtype == dtype) return info;
    }
    throw SafetensorsError("unknown dtype enum value");
}

// Strict UTF-8 check (no overlongs, no surrogates, max U+10FFFF), so that names we print and
// compare are well-formed text whatever the JSON library accepts.
bool isValidUtf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t extra = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            extra = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + extra >= s.size()) return false;
        for (std::size_t k = 1; k <= extra; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        constexpr std::array<std::uint32_t, 4> kMinForLength{0, 0x80, 0x800, 0x10000};
        if (cp < kMinForLength[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += extra + 1;
    }
    return true;
}

std::uint64_t readLittleEndian64(const std::byte* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
    return v;
}

std::string describe(const std::filesystem::path& path) { return "safetensors file '" + path.string() + "'"; }

std::uint64_t checkedNonNegative(const nlohmann::json& v, const std::string& what) {
    if (!v.is_number_integer() && !v.is_number_unsigned()) throw SafetensorsError(what + " is not an integer");
    if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0) {
        throw SafetensorsError(what + " is negative");
    }
    return v.get<std::uint64_t>();
}

}  // namespace

std::size_t dtypeSize(DType dtype) { return infoOf(dtype).size; }
std::string_view dtypeName(DType dtype) { return infoOf(dtype).name; }

DType parseDType(std::string_view name) {
    for (const auto& info : kDTypes) {
        if (info.name == name) return info.dtype;
    }
    throw SafetensorsError("unknown dtype '" + std::string(name) + "'");
}

std::int64_t TensorView::numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

struct SafetensorsFile::Mapping {
    void* address = nullptr;
    std::size_t size = 0;
    std::vector<SafetensorsFile> sources;  // compose(): the files the views point into
    std::vector<std::vector<std::byte>> owned;
    ~Mapping() {
        if (address != nullptr && size > 0) ::munmap(address, size);
    }
};

void SafetensorsFile::releasePages(const TensorView& view) const {
    if (!m_mapping || view.data.empty()) return;
    const auto* begin = reinterpret_cast<const std::byte*>(m_mapping->address);
    if (begin != nullptr && view.data.data() >= begin &&
        view.data.data() + view.data.size() <= begin + m_mapping->size) {
        // Whole pages only: a page shared with a neighbour is dropped too, and simply read again.
        const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        const auto first = reinterpret_cast<std::uintptr_t>(view.data.data()) & ~(page - 1);
        const auto last = reinterpret_cast<std::uintptr_t>(view.data.data() + view.data.size());
        ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
        return;
    }
    for (const auto& source : m_mapping->sources) source.releasePages(view);
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
    const std::string where = describe(path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw SafetensorsError("cannot open " + where + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw SafetensorsError(where + " is not a regular file");
    }
    const auto fileSize = static_cast<std::uint64_t>(st.st_size);
    if (fileSize < 8) {
        ::close(fd);
        throw SafetensorsError(where + " is truncated: " + std::to_string(fileSize) +
                               " bytes, shorter than the 8-byte header length");
    }
    SafetensorsFile file;
    file.m_path = path;
    file.m_mapping = std::make_unique<Mapping>();
    void* addr = ::mmap(nullptr, fileSize, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (addr == MAP_FAILED) throw SafetensorsError("cannot map " + where + ": " + std::strerror(errno));
    file.m_mapping->address = addr;
    file.m_mapping->size = fileSize;
    const auto* bytes = static_cast<const std::byte*>(addr);

    const std::uint64_t headerLen = readLittleEndian64(bytes);
    if (headerLen > kMaxHeaderBytes) {
        throw SafetensorsError(where + ": header length " + std::to_string(headerLen) + " exceeds the " +
                               std::to_string(kMaxHeaderBytes) + "-byte limit");
    }
    if (headerLen > fileSize - 8) {
        throw SafetensorsError(where + " is truncated: header length " + std::to_string(headerLen) +
                               " runs past the end of the file (" + std::to_string(fileSize) + " bytes)");
    }
    const std::string_view headerText(reinterpret_cast<const char*>(bytes + 8), headerLen);
    if (!isValidUtf8(headerText)) throw SafetensorsError(where + ": header is not valid UTF-8");

    nlohmann::json header;
    try {
        header = nlohmann::json::parse(headerText);
    } catch (const nlohmann::json::exception& e) {
        throw SafetensorsError(where + ": header is not valid JSON (" + e.what() + ")");
    }
    if (!header.is_object()) throw SafetensorsError(where + ": header is not a JSON object");

    const std::uint64_t dataStart = 8 + headerLen;
    const std::uint64_t dataSize = fileSize - dataStart;
    const std::byte* data = bytes + dataStart;

    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const auto& entry = it.value();
        if (name == "__metadata__") {
            if (!entry.is_object()) throw SafetensorsError(where + ": __metadata__ is not an object");
            for (auto m = entry.begin(); m != entry.end(); ++m) {
                if (!m.value().is_string()) {
                    throw SafetensorsError(where + ": __metadata__ value '" + m.key() + "' is not a string");
                }
                file.m_metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string what = where + ": tensor '" + name + "'";
        if (!entry.is_object()) throw SafetensorsError(what + " is not an object");
        if (!entry.contains("dtype") || !entry["dtype"].is_string()) throw SafetensorsError(what + " has no dtype");
        if (!entry.contains("shape") || !entry["shape"].is_array()) throw SafetensorsError(what + " has no shape");
        const auto& offsets = entry.contains("data_offsets") ? entry["data_offsets"] : nlohmann::json();
        if (!offsets.is_array() || offsets.size() != 2) {
            throw SafetensorsError(what + " needs data_offsets [begin, end]");
        }
        TensorView view;
        view.name = name;
        try {
            view.dtype = parseDType(entry["dtype"].get<std::string>());
        } catch (const SafetensorsError& e) {
            throw SafetensorsError(what + ": " + e.what());
        }
        // Count elements with overflow checks: a shape like [2^40, 2^40] must not wrap around.
        std::uint64_t numel = 1;
        for (const auto& d : entry["shape"]) {
            const std::uint64_t dim = checkedNonNegative(d, what + " shape entry");
            if (dim != 0 && numel > std::numeric_limits<std::uint64_t>::max() / dim) {
                throw SafetensorsError(what + " shape overflows");
            }
            numel *= dim;
            view.shape.push_back(static_cast<std::int64_t>(dim));
        }
        const std::uint64_t begin = checkedNonNegative(offsets[0], what + " data_offsets[0]");
        const std::uint64_t end = checkedNonNegative(offsets[1], what + " data_offsets[1]");
        if (end < begin) throw SafetensorsError(what + " has data_offsets end before begin");
        if (end > dataSize) {
            throw SafetensorsError(what + " data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                   "] are out of range: the data section has " + std::to_string(dataSize) + " bytes");
        }
        const std::size_t elemSize = dtypeSize(view.dtype);
        if (numel > std::numeric_limits<std::uint64_t>::max() / elemSize || numel * elemSize != end - begin) {
            throw SafetensorsError(what + ": " + std::to_string(end - begin) + " bytes do not hold " +
                                   std::to_string(numel) + " elements of " + std::string(dtypeName(view.dtype)));
        }
        view.data = std::span<const std::byte>(data + begin, end - begin);
        file.m_tensors.push_back(std::move(view));
    }

    std::sort(file.m_tensors.begin(), file.m_tensors.end(), [&](const TensorView& a, const TensorView& b) {
        return a.data.data() != b.data.data() ? a.data.data() < b.data.data() : a.data.size() < b.data.size();
    });
    for (std::size_t i = 1; i < file.m_tensors.size(); ++i) {
        const auto& prev = file.m_tensors[i - 1];
        const auto& cur = file.m_tensors[i];
        if (prev.data.data() + prev.data.size() > cur.data.data()) {
            throw SafetensorsError(where + ": tensors '" + prev.name + "' and '" + cur.name +
                                   "' have overlapping data_offsets");
        }
    }
    for (std::size_t i = 0; i < file.m_tensors.size(); ++i) file.m_index[file.m_tensors[i].name] = i;
    return file;
}

SafetensorsFile SafetensorsFile::compose(std::filesystem::path label, std::vector<SafetensorsFile> sources,
                                         std::vector<TensorView> views, std::vector<OwnedTensor> owned) {
    SafetensorsFile file;
    file.m_path = std::move(label);
    file.m_mapping = std::make_unique<Mapping>();
    file.m_mapping->sources = std::move(sources);
    for (auto& t : owned) {
        file.m_mapping->owned.push_back(std::move(t.bytes));
        const auto& bytes = file.m_mapping->owned.back();
        views.push_back({std::move(t.name), t.dtype, std::move(t.shape), std::span<const std::byte>(bytes)});
    }
    file.m_tensors = std::move(views);
    for (std::size_t i = 0; i < file.m_tensors.size(); ++i) {
        const auto& t = file.m_tensors[i];
        const auto expected = static_cast<std::uint64_t>(t.numel()) * dtypeSize(t.dtype);
        if (expected != t.data.size()) {
            throw SafetensorsError(describe(file.m_path) + ": tensor '" + t.name + "' has " +
                                   std::to_string(t.data.size()) + " bytes, its shape needs " +
                                   std::to_string(expected));
        }
        if (!file.m_index.emplace(t.name, i).second)
            throw SafetensorsError(describe(file.m_path) + ": tensor '" + t.name + "' appears twice");
    }
    return file;
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
    const auto it = m_index.find(name);
    return it == m_index.end() ? nullptr : &m_tensors[it->second];
}

const TensorView& SafetensorsFile::at(std::string_view name) const {
    if (const auto* view = find(name)) return *view;
    throw SafetensorsError(describe(m_path) + " has no tensor '" + std::string(name) + "'");
}

void writeSafetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const auto& t : tensors) {
        if (t.name == "__metadata__" || header.contains(t.name)) {
            throw SafetensorsError("cannot write tensor name '" + t.name + "' twice or as __metadata__");
        }
        std::uint64_t numel = 1;
        for (auto d : t.shape) {
            if (d < 0) throw SafetensorsError("tensor '" + t.name + "' has a negative dimension");
            numel *= static_cast<std::uint64_t>(d);
        }
        if (numel * dtypeSize(t.dtype) != t.data.size()) {
            throw SafetensorsError("tensor '" + t.name + "': " + std::to_string(t.data.size()) +
                                   " bytes do not match its dtype and shape");
        }
        header[t.name] = {
            {"dtype", dtypeName(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
        offset += t.data.size();
    }
    std::string text = header.dump();
    // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
    text.append((8 - (text.size() % 8)) % 8, ' ');

    const auto tmp = std::filesystem::path(path.string() + ".tmp");
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw SafetensorsError("cannot write '" + tmp.string() + "'");
        std::array<char, 8> len{};
        std::uint64_t n = text.size();
        for (auto& b : len) {
            b = static_cast<char>(n & 0xFF);
            n >>= 8;
        }
        out.write(len.data(), len.size());
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const auto& t : tensors) {
            out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
        }
        out.flush();
        if (!out) throw SafetensorsError("I/O error writing '" + tmp.string() + "'");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw SafetensorsError("cannot move '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
}

}  // namespace easel::inference
