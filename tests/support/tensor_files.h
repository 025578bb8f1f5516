#pragma once
// Writes tensors as a .safetensors file (adapters, embeddings, checkpoints made up by a test).
// libtorch: include only from tests that link the inference library.

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "inference/loading/safetensors.h"
#include "inference/tensor_utils.h"

namespace easel::testing {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

inline std::filesystem::path writeTensorFile(const std::filesystem::path& path, const NamedTensors& tensors,
                                             const std::map<std::string, std::string>& metadata = {}) {
    std::vector<torch::Tensor> keep;  // contiguous copies, alive until the file is written
    keep.reserve(tensors.size());
    std::vector<inference::TensorToWrite> out;
    for (const auto& [name, t] : tensors) {
        keep.push_back(t.contiguous());
        const auto& c = keep.back();
        out.push_back({name,
                       *inference::fileDtypeOf(c.scalar_type()),
                       c.sizes().vec(),
                       {static_cast<const std::byte*>(c.data_ptr()), static_cast<std::size_t>(c.nbytes())}});
    }
    inference::writeSafetensors(path, out, metadata);
    return path;
}

}  // namespace easel::testing
