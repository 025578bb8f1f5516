#pragma once
// The Stable Diffusion UNet in the LDM layout (openaimodel.UNetModel): module names equal the keys
// after "model.diffusion_model.", so a single-file checkpoint loads by name.

#include <torch/torch.h>

#include "inference/models/model_configs.h"

namespace easel::inference {

// Sinusoidal timestep embedding, cat(cos, sin) (LDM timestep_embedding, max_period 10000), float32.
torch::Tensor timestepEmbedding(const torch::Tensor& timesteps, int dim);

struct UNet2DConditionModelImpl : torch::nn::Module {
    explicit UNet2DConditionModelImpl(UNetConfig config);
    // x [B, inChannels, H, W], timesteps [B] (float, may be fractional), context [B, T, contextDim],
    // y [B, admInChannels] (SDXL's `vector`; required exactly when the model has label_emb).
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& timesteps, const torch::Tensor& context,
                          const torch::Tensor& y = {});
    // The embedding every ResBlock gets: time_embed(sinusoidal(t)) (+ label_emb(y) for SDXL).
    torch::Tensor embedding(const torch::Tensor& timesteps, const torch::Tensor& y, torch::Dtype dtype);

    UNetConfig config;
    torch::nn::Sequential time_embed{nullptr};  // 0 Linear, 1 SiLU, 2 Linear
    // label_emb(y) alone (SDXL), [B, timeEmbedDim].
    torch::Tensor labelEmbedding(const torch::Tensor& y);
    // SDXL: label_emb.0 = (0 Linear, 1 SiLU, 2 Linear), sgm's Sequential inside a Sequential (a list
    // here: a Sequential cannot hold one).
    torch::nn::ModuleList label_emb{nullptr};
    torch::nn::ModuleList input_blocks{nullptr};
    torch::nn::ModuleList middle_block{nullptr};
    torch::nn::ModuleList output_blocks{nullptr};
    torch::nn::Sequential out{nullptr};  // 0 GroupNorm32, 1 SiLU, 2 Conv3x3
    // Training: ResBlocks and transformers keep only their inputs and run again in the backward pass
    // (blocks/checkpoint.h): activation memory for one more forward pass per step.
    bool gradientCheckpointing = false;
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace easel::inference
