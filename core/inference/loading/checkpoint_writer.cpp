#include "inference/loading/checkpoint_writer.h"

#include "inference/tensor_utils.h"

namespace easel::inference {
namespace {

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
    if (dtype != DType::F16 && dtype != DType::BF16 && dtype != DType::F32) {
        throw std::invalid_argument("checkpoints are written as F16, BF16 or F32");
    }
    const auto floatType = *torchDtypeOf(dtype);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    collect(*model.unet, model.detected.unetPrefix, floatType, tensors);
    collect(*model.vae, model.detected.vaePrefix, floatType, tensors);
    collect(*model.textModule, model.detected.textPrefix, floatType, tensors);
    if (model.textModule2) collect(*model.textModule2, model.detected.text2Prefix, floatType, tensors);
    std::vector<TensorToWrite> views;
    views.reserve(tensors.size());
    for (auto& [name, t] : tensors) {
        const auto fileType = fileDtypeOf(t.scalar_type());
        if (!fileType) throw std::invalid_argument("tensor '" + name + "' has a dtype safetensors cannot hold");
        views.push_back({name, *fileType, t.sizes().vec(),
                         std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.nbytes())});
    }
    auto meta = metadata;
    meta.emplace("format", "pt");
    writeSafetensors(path, views, meta);
}

}  // namespace easel::inference
