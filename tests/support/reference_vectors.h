#pragma once
// Reads the reference vectors (see tests/data/reference/README.md) as torch tensors.

#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "inference/loading/safetensors.h"
#include "inference/tensor_utils.h"
#include "reference_dir.h"

namespace easel::testing {

class ReferenceVectors {
public:
    explicit ReferenceVectors(const std::string& fileName)
        : m_file(inference::SafetensorsFile::open(referenceFile(fileName))) {}
    torch::Tensor operator[](const std::string& name) const { return inference::toTensor(m_file.at(name)); }
    bool has(const std::string& name) const { return m_file.find(name) != nullptr; }
    const inference::SafetensorsFile& file() const { return m_file; }

private:
    inference::SafetensorsFile m_file;
};

inline nlohmann::json referenceConfig() {
    std::ifstream in(referenceFile("config.json"));
    return nlohmann::json::parse(in);
}

inline nlohmann::json referenceJson(const std::string& name) {
    std::ifstream in(referenceFile(name));
    return nlohmann::json::parse(in);
}

inline double maxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The README's float32 tolerance: 1e-5 absolute for outputs of magnitude up to ~5, scaled for
// larger outputs so that a folder with bigger activations is judged alike.
inline double parityTolerance(const torch::Tensor& reference, double base = 1e-5) {
    const double scale = reference.abs().max().item<double>();
    return base * std::max(1.0, scale / 5.0);
}

#define EXPECT_TENSOR_NEAR(actual, reference, tol)                                                      \
    do {                                                                                                \
        const auto easel_a_ = (actual);                                                                 \
        const auto easel_r_ = (reference);                                                              \
        ASSERT_EQ(easel_a_.sizes(), easel_r_.sizes());                                                  \
        const double easel_d_ = ::easel::testing::maxAbsDiff(easel_a_, easel_r_);                       \
        EXPECT_LE(easel_d_, (tol)) << #actual << " vs " << #reference << ": max abs diff " << easel_d_; \
    } while (0)

}  // namespace easel::testing
