#include "inference/tensor_utils.h"

#include <sstream>

namespace easel::inference {
namespace {

torch::Dtype torchDtype(const TensorView& view) {
    switch (view.dtype) {
        case DType::Bool:
            return torch::kBool;
        case DType::U8:
            return torch::kUInt8;
        case DType::I8:
            return torch::kInt8;
        case DType::I16:
            return torch::kInt16;
        case DType::I32:
            return torch::kInt32;
        case DType::I64:
            return torch::kInt64;
        case DType::F16:
            return torch::kFloat16;
        case DType::BF16:
            return torch::kBFloat16;
        case DType::F32:
            return torch::kFloat32;
        case DType::F64:
            return torch::kFloat64;
        default:
            throw SafetensorsError("tensor '" + view.name + "' has dtype " + std::string(dtypeName(view.dtype)) +
                                   ", which Easel cannot compute with");
    }
}

}  // namespace

torch::Tensor toTensor(const TensorView& view) {
    const auto dtype = torchDtype(view);
    auto out = torch::empty(view.shape, torch::TensorOptions().dtype(dtype));
    if (!view.data.empty()) std::memcpy(out.data_ptr(), view.data.data(), view.data.size());
    return out;
}

std::string shapeString(c10::IntArrayRef sizes) { return shapeString(sizes.vec()); }

std::string shapeString(const std::vector<std::int64_t>& sizes) {
    std::ostringstream out;
    out << '[';
    for (std::size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
    out << ']';
    return out.str();
}

}  // namespace easel::inference
