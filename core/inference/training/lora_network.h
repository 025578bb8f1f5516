#pragma once
// Trainable low-rank adapters (LoRA, Hu et al. 2021) on a loaded SD 1.x / 2.x model, with kohya-ss's
// choice of modules and names (sd-scripts networks/lora.py): in the UNet every Linear and 1x1 Conv2d of
// the spatial transformers (proj_in, attn1/attn2 to_q/k/v/out, ff, proj_out); in a CLIP text encoder
// the attention and MLP Linears. save() writes a kohya LoRA file that A1111, ComfyUI and Easel's own
// adapter loader (adapters/adapter.h) read.
//
// attach() hangs a low-rank branch (models/blocks/low_rank_branch.h) on each targeted module, so that a
// forward pass computes W x + (alpha / rank) · up · down · x and a backward pass reaches only up and down:
// W stays frozen and is neither copied nor differentiated. detach() takes the branches off again.
//
// Initialisation as in the paper and kohya: down ~ Kaiming-uniform (a = sqrt 5: U(±1/sqrt(fan_in))), up = 0,
// so training starts from the base model exactly. Drawn from a generator of its own (seed), not
// libtorch's global one, so a generation running beside training keeps its seeds.

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "inference/loading/checkpoint_loader.h"

namespace easel::inference::training {

class LoRANetworkImpl : public torch::nn::Module {
public:
    // Throws std::invalid_argument for rank < 1 or a model with no module to adapt. The text encoder is
    // adapted only when asked and only for the transformers CLIP layout (SD 1.x); kohya's SD 2.x
    // text-encoder names address a converted model Easel does not hold.
    LoRANetworkImpl(StableDiffusionModel& model, int rank, double alpha, bool textEncoder, std::uint64_t seed = 0);
    ~LoRANetworkImpl() override;

    void attach();
    void detach();

    // Kohya tensors (.lora_down.weight, .lora_up.weight, .alpha) in float16, with `metadata` plus
    // ss_network_module / ss_network_dim / ss_network_alpha / ss_base_model_version.
    void save(const std::filesystem::path& path, std::map<std::string, std::string> metadata) const;

    std::size_t moduleCount() const { return m_modules.size(); }
    std::size_t textEncoderModuleCount() const;
    int rank() const { return m_rank; }

private:
    struct Target {
        std::string kohyaName;                      // "lora_unet_down_blocks_0_attentions_0_proj_in"
        std::shared_ptr<torch::nn::Module> module;  // the Linear or 1x1 Conv2d adapted
        bool conv = false;
        torch::Tensor down;  // [rank, in]
        torch::Tensor up;    // [out, rank]
        bool textEncoder = false;
    };
    void addTargets(torch::nn::Module& root, const std::string& originalPrefix, const DetectedModel& detected,
                    bool textEncoder, torch::Generator& generator);

    int m_rank;
    double m_alpha;
    ModelFamily m_family;
    std::vector<Target> m_modules;
    bool m_attached = false;
};
TORCH_MODULE(LoRANetwork);

}  // namespace easel::inference::training
