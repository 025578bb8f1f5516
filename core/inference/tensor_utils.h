#pragma once
// Bridges between the torch-free file layer and libtorch. Include only from inference .cpp files.

#include <torch/torch.h>

#include <optional>
#include <string>

#include "inference/loading/safetensors.h"

namespace easel::inference {

// Copies a safetensors view into a new CPU tensor of the same dtype; throws SafetensorsError for
// dtypes libtorch 1.13 lacks (F8, U16, U32, U64).
torch::Tensor toTensor(const TensorView& view);

// The libtorch dtype of a file dtype and back; nullopt where the other side has none.
std::optional<torch::Dtype> torchDtypeOf(DType dtype);
std::optional<DType> fileDtypeOf(torch::Dtype dtype);

// "[1, 4, 64, 64]"
std::string shapeString(c10::IntArrayRef sizes);
std::string shapeString(const std::vector<std::int64_t>& sizes);

}  // namespace easel::inference
