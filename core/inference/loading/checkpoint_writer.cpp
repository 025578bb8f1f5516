#include "inference/loading/checkpoint_writer.h"

namespace easel::inference {
namespace {

torch::Dtype torchDtype(DType d) {
    switch (d) {
        case DType::F16:
            return torch::kFloat16;
        case DType::BF16:
            return torch::kBFloat16;
        case DType::F32:
            return torch::kFloat32;
        default:
            throw std::invalid_argument("checkpoints are written as F16, BF16 or F32");
    }
}

DType fileDtype(torch::Dtype d) {
    switch (d) {
        case torch::kFloat16:
            return DType::F16;
        case torch::kBFloat16:
            return DType::BF16;
        case torch::kFloat32:
            return DType::F32;
        case torch::kInt64:
            return DType::I64;
        case torch::kInt32:
            return DType::I32;
        default:
            throw std::invalid_argument("unsupported tensor dtype in checkpoint");
    }
}

void collect(torch::nn::Module& module, const std::string& prefix, torch::Dtype floatType,
             std::vector<std::pair<std::string, torch::Tensor>>& out) {
    auto add = [&](const std::string& name, const torch::Tensor& t) {
        auto c = t.detach().to(torch::kCPU);
        if (c.is_floating_point()) c = c.to(floatType);
        out.emplace_back(prefix + name, c.contiguous());
    };
    for (const auto& p : module.named_parameters(true)) add(p.key(), p.value());
    for (const auto& b : module.named_buffers(true)) add(b.key(), b.value());
}

}  // namespace

void saveSingleFileCheckpoint(StableDiffusionModel& model, const std::filesystem::path& path, DType dtype,
                              const std::map<std::string, std::string>& metadata) {
    const auto floatType = torchDtype(dtype);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    collect(*model.unet, model.detected.unetPrefix, floatType, tensors);
    collect(*model.vae, model.detected.vaePrefix, floatType, tensors);
    collect(*model.textModule, model.detected.textPrefix, floatType, tensors);
    std::vector<TensorToWrite> views;
    views.reserve(tensors.size());
    for (auto& [name, t] : tensors) {
        views.push_back({name, fileDtype(t.scalar_type()), t.sizes().vec(),
                         std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.nbytes())});
    }
    auto meta = metadata;
    meta.emplace("format", "pt");
    writeSafetensors(path, views, meta);
}

}  // namespace easel::inference
