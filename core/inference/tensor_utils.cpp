#include "inference/tensor_utils.h"

#include <sstream>

namespace easel::inference {
namespace {

struct DTypePair {
    DType file;
    torch::Dtype torch;
};

// The dtypes both sides know; F8, U16, U32 and U64 have no libtorch 1.13 counterpart.
constexpr DTypePair kPairs[] = {
    {DType::Bool, torch::kBool},   {DType::U8, torch::kUInt8},      {DType::I8, torch::kInt8},
    {DType::I16, torch::kInt16},   {DType::I32, torch::kInt32},     {DType::I64, torch::kInt64},
    {DType::F16, torch::kFloat16}, {DType::BF16, torch::kBFloat16}, {DType::F32, torch::kFloat32},
    {DType::F64, torch::kFloat64},
};

}  // namespace

std::optional<torch::Dtype> torchDtypeOf(DType dtype) {
    for (const auto& p : kPairs) {
        if (p.file == dtype) return p.torch;
    }
    return std::nullopt;
}

std::optional<DType> fileDtypeOf(torch::Dtype dtype) {
    for (const auto& p : kPairs) {
        if (p.torch == dtype) return p.file;
    }
    return std::nullopt;
}

torch::Tensor toTensor(const TensorView& view) {
    const auto dtype = torchDtypeOf(view.dtype);
    if (!dtype) {
        throw SafetensorsError("tensor '" + view.name + "' has dtype " + std::string(dtypeName(view.dtype)) +
                               ", which Easel cannot compute with");
    }
    auto out = torch::empty(view.shape, torch::TensorOptions().dtype(*dtype));
    if (!view.data.empty()) std::memcpy(out.data_ptr(), view.data.data(), view.data.size());
    return out;
}

namespace {
std::mutex& defaultDtypeMutex() {
    static std::mutex m;
    return m;
}
}  // namespace

DefaultDtypeGuard::DefaultDtypeGuard(torch::Dtype dtype)
    : m_lock(defaultDtypeMutex()), m_previous(c10::get_default_dtype()) {
    c10::set_default_dtype(caffe2::TypeMeta::fromScalarType(dtype));
}

DefaultDtypeGuard::~DefaultDtypeGuard() { c10::set_default_dtype(m_previous); }

void useChannelsLast(torch::nn::Module& module) {
    torch::NoGradGuard noGrad;
    for (auto& p : module.parameters(true)) {
        if (p.dim() == 4 && !p.is_contiguous(torch::MemoryFormat::ChannelsLast))
            p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
    }
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
