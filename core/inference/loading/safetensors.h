#pragma once
// Reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
// 8-byte little-endian header length N, N bytes of JSON header, then raw little-endian tensor data.
// The reader memory-maps the file and validates every header field before handing out views, so a
// hostile file gives a SafetensorsError, never a crash or a huge allocation. No libtorch here.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace easel::inference {

enum class DType { Bool, U8, I8, I16, U16, I32, U32, I64, U64, F8E4M3, F8E5M2, F16, BF16, F32, F64 };

// Bytes per element; every dtype the format knows is byte-aligned.
std::size_t dtypeSize(DType dtype);
// The format's spelling ("F32", "BF16", ...).
std::string_view dtypeName(DType dtype);
// Parses the format's spelling; throws SafetensorsError on an unknown name.
DType parseDType(std::string_view name);

class SafetensorsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct TensorView {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::span<const std::byte> data;  // points into the mapped file

    std::int64_t numel() const;
};

// A tensor held in memory rather than in a mapped file (see SafetensorsFile::compose).
struct OwnedTensor {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> bytes;
};

class SafetensorsFile {
public:
    // Largest header accepted; the official implementation uses the same bound.
    static constexpr std::uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

    static SafetensorsFile open(const std::filesystem::path& path);
    // Other files' tensors under new names and shapes (same bytes), plus `owned` ones, as one file:
    // e.g. a diffusers folder seen in the original single-file layout. `sources` stay mapped while
    // the result lives, and `label` stands for the path in messages. Throws SafetensorsError on a
    // duplicate name or a shape that does not match the byte count.
    static SafetensorsFile compose(std::filesystem::path label, std::vector<SafetensorsFile> sources,
                                   std::vector<TensorView> views, std::vector<OwnedTensor> owned = {});

    SafetensorsFile(SafetensorsFile&&) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
    ~SafetensorsFile();

    const std::filesystem::path& path() const { return m_path; }
    // Tensors in the order of their data offsets.
    const std::vector<TensorView>& tensors() const { return m_tensors; }
    // nullptr when absent.
    const TensorView* find(std::string_view name) const;
    // Throws SafetensorsError naming the file and the key when absent.
    const TensorView& at(std::string_view name) const;
    const std::map<std::string, std::string>& metadata() const { return m_metadata; }
    // Drops the pages of a mapped tensor's bytes from this process (they are read from the file
    // again if touched), so that loading a large checkpoint does not keep all of it resident.
    // A tensor held in memory, or not of this file, is left alone.
    void releasePages(const TensorView& view) const;

private:
    struct Mapping;
    SafetensorsFile() = default;

    std::filesystem::path m_path;
    std::unique_ptr<Mapping> m_mapping;
    std::vector<TensorView> m_tensors;
    std::map<std::string, std::size_t, std::less<>> m_index;  // name -> position in m_tensors
    std::map<std::string, std::string> m_metadata;
};

struct TensorToWrite {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::span<const std::byte> data;
};

// Writes atomically (temporary file + rename). Throws SafetensorsError when a tensor's byte count
// does not match its dtype and shape, on duplicate names, or on I/O failure.
void writeSafetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace easel::inference
