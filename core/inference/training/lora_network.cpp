#include "inference/training/lora_network.h"

#include <cmath>
#include <stdexcept>

#include "inference/adapters/adapter_key_map.h"
#include "inference/loading/diffusers_key_map.h"
#include "inference/loading/safetensors.h"
#include "inference/models/blocks/low_rank_branch.h"
#include "inference/tensor_utils.h"

namespace easel::inference::training {
namespace {

constexpr std::string_view kWeight = ".weight";

std::string underscored(std::string s) {
    for (auto& c : s) {
        if (c == '.') c = '_';
    }
    return s;
}

bool isUNetTarget(const std::string& name) {
    return name.find(".transformer_blocks.") != std::string::npos || name.ends_with(".proj_in") ||
           name.ends_with(".proj_out");
}

bool isTextTarget(const std::string& name) {
    return name.find(".self_attn.") != std::string::npos || name.ends_with(".mlp.fc1") || name.ends_with(".mlp.fc2");
}

}  // namespace

LoRANetworkImpl::LoRANetworkImpl(StableDiffusionModel& model, int rank, double alpha, bool textEncoder,
                                 std::uint64_t seed)
    : m_rank(rank), m_alpha(alpha), m_family(model.detected.family) {
    if (rank < 1) throw std::invalid_argument("LoRA rank must be at least 1");
    auto generator = torch::make_generator<torch::CPUGeneratorImpl>(seed);
    addTargets(*model.unet, model.detected.unetPrefix, model.detected, false, generator);
    if (textEncoder && model.detected.text.kind == TextEncoderKind::CLIP && !model.textModule2)
        addTargets(*model.textModule, model.detected.textPrefix, model.detected, true, generator);
    if (m_modules.empty()) throw std::invalid_argument("the model has no module a LoRA can adapt");
}

LoRANetworkImpl::~LoRANetworkImpl() { detach(); }

void LoRANetworkImpl::addTargets(torch::nn::Module& root, const std::string& originalPrefix,
                                 const DetectedModel& detected, bool textEncoder, torch::Generator& generator) {
    const auto layout = diffusersLayoutOf(detected);
    for (const auto& item : root.named_modules("", false)) {
        const auto& name = item.key();
        if (textEncoder ? !isTextTarget(name) : !isUNetTarget(name)) continue;
        const torch::Tensor* weight = nullptr;
        bool conv = false;
        if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(item.value().get())) {
            weight = &linear->weight;
        } else if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(item.value().get())) {
            const auto& k = c->options.kernel_size();
            if ((*k)[0] != 1 || (*k)[1] != 1) continue;  // kohya's plain LoRA takes 1x1 convolutions only
            weight = &c->weight;
            conv = true;
        } else {
            continue;
        }
        const auto key = originalPrefix + name + std::string(kWeight);
        const auto diffusers = originalToDiffusersKey(key, layout);
        if (!diffusers) continue;
        const auto path = diffusers->key.substr(0, diffusers->key.size() - kWeight.size());
        Target t;
        t.kohyaName = (textEncoder ? "lora_te_" : "lora_unet_") + underscored(path);
        t.module = item.value();
        t.conv = conv;
        t.textEncoder = textEncoder;
        const auto out = weight->size(0), in = weight->size(1);
        const auto bound = 1.0 / std::sqrt(static_cast<double>(in));
        const auto down = (torch::rand({m_rank, in}, generator, torch::kFloat32) * 2 - 1) * bound;
        t.down = register_parameter(t.kohyaName + "_lora_down", down.to(weight->device()));
        t.up = register_parameter(t.kohyaName + "_lora_up",
                                  torch::zeros({out, m_rank}, torch::TensorOptions().device(weight->device())));
        m_modules.push_back(std::move(t));
    }
}

void LoRANetworkImpl::attach() {
    if (m_attached) return;
    const double scale = m_alpha / m_rank;
    for (auto& t : m_modules) t.module->register_module(kLowRankBranchName, LowRankBranch(t.down, t.up, scale));
    m_attached = true;
}

void LoRANetworkImpl::detach() {
    if (!m_attached) return;
    for (auto& t : m_modules) t.module->unregister_module(kLowRankBranchName);
    m_attached = false;
}

std::size_t LoRANetworkImpl::textEncoderModuleCount() const {
    std::size_t n = 0;
    for (const auto& t : m_modules) n += t.textEncoder ? 1 : 0;
    return n;
}

void LoRANetworkImpl::save(const std::filesystem::path& path, std::map<std::string, std::string> metadata) const {
    std::vector<torch::Tensor> keep;  // owns the half-precision copies while the file is written
    std::vector<TensorToWrite> tensors;
    auto add = [&](const std::string& name, torch::Tensor t) {
        t = t.detach().to(torch::kCPU, torch::kFloat16).contiguous();
        keep.push_back(t);
        tensors.push_back({name, DType::F16, t.sizes().vec(),
                           std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.nbytes())});
    };
    for (const auto& t : m_modules) {
        auto down = t.down, up = t.up;
        if (t.conv) {  // a 1x1 convolution: kohya stores the factors as 1x1 kernels
            down = down.view({m_rank, down.size(1), 1, 1});
            up = up.view({up.size(0), m_rank, 1, 1});
        }
        add(t.kohyaName + ".lora_down.weight", down);
        add(t.kohyaName + ".lora_up.weight", up);
        add(t.kohyaName + ".alpha", torch::tensor(static_cast<float>(m_alpha)));
    }
    metadata["ss_network_module"] = "networks.lora";
    metadata["ss_network_dim"] = std::to_string(m_rank);
    metadata["ss_network_alpha"] = std::to_string(m_alpha);
    const bool sd2 = m_family == ModelFamily::SD2;
    metadata["ss_base_model_version"] = sd2 ? "sd_v2" : "sd_v1";
    metadata["ss_v2"] = sd2 ? "True" : "False";
    metadata["modelspec.architecture"] = sd2 ? "stable-diffusion-v2/lora" : "stable-diffusion-v1/lora";
    writeSafetensors(path, tensors, metadata);
}

}  // namespace easel::inference::training
