#pragma once
// Bridges between the torch-free file layer and libtorch. Include only from inference .cpp files.

#include <torch/torch.h>

#include <mutex>
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

// Makes `dtype` libtorch's default floating dtype while it lives, so that modules are built directly
// in it (an SD 1.5 UNet built in float32 and then converted to bf16 peaks at 1.5x its bf16 size).
// libtorch's default is process-wide: guards are serialised by a mutex, and nothing else may build
// tensors without an explicit dtype while one lives.
class DefaultDtypeGuard {
public:
    explicit DefaultDtypeGuard(torch::Dtype dtype);
    ~DefaultDtypeGuard();
    DefaultDtypeGuard(const DefaultDtypeGuard&) = delete;
    DefaultDtypeGuard& operator=(const DefaultDtypeGuard&) = delete;

private:
    std::unique_lock<std::mutex> m_lock;
    caffe2::TypeMeta m_previous;
};

// Stores a module's 4-D parameters (convolution weights) channels-last. On the CPU, oneDNN then runs
// convolutions on NHWC activations without reordering them at every layer, and the outputs stay NHWC.
void useChannelsLast(torch::nn::Module& module);

// "[1, 4, 64, 64]"
std::string shapeString(c10::IntArrayRef sizes);
std::string shapeString(const std::vector<std::int64_t>& sizes);

}  // namespace easel::inference
