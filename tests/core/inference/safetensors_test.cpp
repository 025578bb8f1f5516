#include "inference/loading/safetensors.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "reference_dir.h"
#include "temp_dir.h"

using easel::inference::DType;
using easel::inference::SafetensorsError;
using easel::inference::SafetensorsFile;
using easel::testing::TempDir;

namespace {

std::string withLength(std::uint64_t headerLen, std::string_view header, std::string_view data = {}) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((headerLen >> (8 * i)) & 0xFF);
    out.append(header);
    out.append(data);
    return out;
}

std::string file(std::string_view header, std::string_view data = {}) {
    return withLength(header.size(), header, data);
}

// Expects open() to throw SafetensorsError whose message contains `fragment`.
void expectRejected(const std::string& bytes, const std::string& fragment) {
    TempDir dir;
    const auto path = dir.write("bad.safetensors", bytes);
    try {
        (void)SafetensorsFile::open(path);
        FAIL() << "accepted a malformed file; expected an error containing '" << fragment << "'";
    } catch (const SafetensorsError& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

template <typename T>
std::span<const std::byte> bytesOf(const std::vector<T>& v) {
    return std::as_bytes(std::span<const T>(v));
}

}  // namespace

TEST(Safetensors, RoundTripsF32F16Bf16AndMetadata) {
    TempDir dir;
    const std::vector<float> f32{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -8.5f};
    const std::vector<std::uint16_t> f16{0x3C00, 0xC000, 0x7BFF};  // 1, -2, 65504
    const std::vector<std::uint16_t> bf16{0x3F80, 0x4049};         // 1, ~3.14
    const auto path = dir / "t.safetensors";
    easel::inference::writeSafetensors(path,
                                       {{"a.weight", DType::F32, {2, 3}, bytesOf(f32)},
                                        {"b", DType::F16, {3}, bytesOf(f16)},
                                        {"c", DType::BF16, {1, 2}, bytesOf(bf16)}},
                                       {{"format", "pt"}});
    const auto st = SafetensorsFile::open(path);
    ASSERT_EQ(st.tensors().size(), 3u);
    EXPECT_EQ(st.metadata().at("format"), "pt");
    const auto& a = st.at("a.weight");
    EXPECT_EQ(a.dtype, DType::F32);
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(a.numel(), 6);
    ASSERT_EQ(a.data.size(), 24u);
    EXPECT_EQ(std::memcmp(a.data.data(), f32.data(), 24), 0);
    EXPECT_EQ(st.at("b").dtype, DType::F16);
    EXPECT_EQ(std::memcmp(st.at("b").data.data(), f16.data(), 6), 0);
    EXPECT_EQ(st.at("c").dtype, DType::BF16);
    EXPECT_EQ(std::memcmp(st.at("c").data.data(), bf16.data(), 4), 0);
    EXPECT_EQ(st.find("missing"), nullptr);
    EXPECT_THROW((void)st.at("missing"), SafetensorsError);
    // The header is padded so that the data section is 8-byte aligned.
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data.data()) % 8, 0u);
}

TEST(Safetensors, ReadsEveryReferenceFileCompletely) {
    const auto dir = easel::testing::referenceFile("");
    int files = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
        if (entry.path().extension() != ".safetensors") continue;
        ++files;
        SCOPED_TRACE(entry.path().string());
        const auto st = SafetensorsFile::open(entry.path());
        ASSERT_FALSE(st.tensors().empty());
        // Tensors are sorted by offset and, as written by the reference writer, tile the data
        // section with no gap: the last one ends exactly at the end of the file.
        const auto* cursor = st.tensors().front().data.data();
        for (const auto& t : st.tensors()) {
            EXPECT_EQ(t.data.data(), cursor) << t.name;
            EXPECT_EQ(static_cast<std::size_t>(t.numel()) * easel::inference::dtypeSize(t.dtype), t.data.size());
            cursor += t.data.size();
        }
        std::uint64_t headerLen = 0;
        {
            std::ifstream in(entry.path(), std::ios::binary);
            unsigned char len[8];
            in.read(reinterpret_cast<char*>(len), 8);
            for (int i = 7; i >= 0; --i) headerLen = (headerLen << 8) | len[i];
        }
        std::uint64_t dataBytes = 0;
        for (const auto& t : st.tensors()) dataBytes += t.data.size();
        EXPECT_EQ(8 + headerLen + dataBytes, std::filesystem::file_size(entry.path()));
    }
    EXPECT_GT(files, 0);
}

TEST(Safetensors, ReadsI64PositionIdsOfTheSingleFileCheckpoint) {
    const auto path = easel::testing::referenceFile("tiny_sd_checkpoint.safetensors");
    const auto st = SafetensorsFile::open(path);
    EXPECT_EQ(st.metadata().at("format"), "pt");
    const auto& ids = st.at("cond_stage_model.transformer.text_model.embeddings.position_ids");
    ASSERT_EQ(ids.dtype, DType::I64);
    ASSERT_EQ(ids.shape.size(), 2u);
    std::vector<std::int64_t> values(static_cast<std::size_t>(ids.numel()));
    std::memcpy(values.data(), ids.data.data(), ids.data.size());
    for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(values[i], static_cast<std::int64_t>(i));
    EXPECT_EQ(st.at("model_ema.num_updates").dtype, DType::I32);
    EXPECT_TRUE(st.at("model_ema.num_updates").shape.empty());
}

TEST(SafetensorsMalformed, TruncatedBeforeHeaderLength) {
    expectRejected("", "truncated");
    expectRejected(std::string(7, '\0'), "truncated");
}

TEST(SafetensorsMalformed, HeaderLengthPastEnd) {
    expectRejected(withLength(100, "{}"), "past the end");
    expectRejected(withLength(~0ull, "{}"), "exceeds");  // no 16 EiB allocation
    expectRejected(withLength(SafetensorsFile::kMaxHeaderBytes + 1, "{}"), "exceeds");
}

TEST(SafetensorsMalformed, NotJsonOrNotAnObject) {
    expectRejected(file("{\"a\": "), "not valid JSON");
    expectRejected(file("[1, 2, 3]"), "not a JSON object");
    expectRejected(file(""), "not valid JSON");
}

TEST(SafetensorsMalformed, NonUtf8Header) {
    expectRejected(file("{\"\xff\xfe\": {\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", "abcd"), "UTF-8");
    expectRejected(file("{\"\xc0\xaf\": 1}"), "UTF-8");  // overlong encoding of '/'
}

TEST(SafetensorsMalformed, BadDtype) {
    expectRejected(file(R"({"x":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", "abcd"), "unknown dtype 'F17'");
    expectRejected(file(R"({"x":{"dtype":3,"shape":[1],"data_offsets":[0,4]}})", "abcd"), "no dtype");
}

TEST(SafetensorsMalformed, OffsetsOutOfRange) {
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"), "out of range");
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", "abcdefgh"), "end before begin");
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "abcd"), "negative");
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "abcd"), "data_offsets");
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[1]}})", "abcd"), "data_offsets");
}

TEST(SafetensorsMalformed, SizeDoesNotMatchShape) {
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "abcdefgh"), "do not hold 3");
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"), "negative");
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", "abcd"),
                   "overflows");
    expectRejected(file(R"({"x":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", "abcd"), "no shape");
}

TEST(SafetensorsMalformed, OverlappingTensors) {
    expectRejected(file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        "abcdefgh"),
                   "overlapping");
}

TEST(SafetensorsMalformed, BadMetadataAndEntries) {
    expectRejected(file(R"({"__metadata__":{"format":1}})"), "__metadata__");
    expectRejected(file(R"({"__metadata__":[1]})"), "__metadata__");
    expectRejected(file(R"({"x":5})"), "not an object");
}

TEST(SafetensorsMalformed, MissingFileOrDirectory) {
    TempDir dir;
    EXPECT_THROW((void)SafetensorsFile::open(dir / "nope.safetensors"), SafetensorsError);
    EXPECT_THROW((void)SafetensorsFile::open(dir.path()), SafetensorsError);
}

TEST(SafetensorsWriter, RejectsInconsistentTensors) {
    TempDir dir;
    const std::vector<float> v{1, 2, 3};
    EXPECT_THROW(easel::inference::writeSafetensors(dir / "a", {{"x", DType::F32, {4}, bytesOf(v)}}), SafetensorsError);
    EXPECT_THROW(easel::inference::writeSafetensors(
                     dir / "b", {{"x", DType::F32, {3}, bytesOf(v)}, {"x", DType::F32, {3}, bytesOf(v)}}),
                 SafetensorsError);
    EXPECT_FALSE(std::filesystem::exists(dir / "a"));
}

TEST(SafetensorsMalformed, EmptyTensorAndEmptyFileAreFine) {
    TempDir dir;
    const auto p = dir.write("ok.safetensors", file(R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})"));
    const auto st = SafetensorsFile::open(p);
    EXPECT_EQ(st.at("e").numel(), 0);
    const auto p2 = dir.write("empty.safetensors", file("{}"));
    EXPECT_TRUE(SafetensorsFile::open(p2).tensors().empty());
}

namespace {

// Resident set of this process in bytes (/proc/self/statm, second field, in pages).
std::int64_t residentBytes() {
    std::ifstream statm("/proc/self/statm");
    std::int64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

}  // namespace

TEST(Safetensors, ReleasingATensorsPagesDropsThemFromTheProcessAndKeepsItsBytes) {
    TempDir dir;
    std::vector<float> big(8 << 20);  // 32 MiB
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 1000) * 0.5f;
    const std::vector<float> small{1.0f, 2.0f, 3.0f};
    const auto path = dir / "big.safetensors";
    easel::inference::writeSafetensors(path,
                                       {{"big", DType::F32, {static_cast<std::int64_t>(big.size())}, bytesOf(big)},
                                        {"small", DType::F32, {3}, bytesOf(small)}});
    const auto st = SafetensorsFile::open(path);
    const auto& view = st.at("big");
    const std::size_t count = big.size();
    auto checksum = [&] {
        double sum = 0;
        const auto* p = reinterpret_cast<const float*>(view.data.data());
        for (std::size_t i = 0; i < count; ++i) sum += p[i];
        return sum;
    };
    double expected = 0;
    for (float f : big) expected += f;
    big.clear();
    big.shrink_to_fit();
    const auto before = residentBytes();
    EXPECT_EQ(checksum(), expected);  // touches every page of the mapping
    const auto touched = residentBytes();
    EXPECT_GT(touched - before, 24 << 20);
    st.releasePages(view);
    const auto released = residentBytes();
    EXPECT_LT(released, touched - (24 << 20)) << "the tensor's pages are still resident";
    // The bytes are read from the file again when touched; the other tensor is unharmed.
    EXPECT_EQ(checksum(), expected);
    EXPECT_EQ(std::memcmp(st.at("small").data.data(), small.data(), 12), 0);
}

TEST(Safetensors, ReleasingPagesLeavesTensorsHeldInMemoryAlone) {
    std::vector<std::byte> bytes(4 << 20, std::byte{7});
    easel::inference::OwnedTensor owned{"owned", DType::U8, {static_cast<std::int64_t>(bytes.size())}, bytes};
    const auto st = SafetensorsFile::compose("composed", {}, {}, {std::move(owned)});
    const auto& view = st.at("owned");
    st.releasePages(view);
    for (std::size_t i = 0; i < view.data.size(); i += 4096) ASSERT_EQ(view.data[i], std::byte{7}) << i;
}
