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
    // x [B, inChannels, H, W], timesteps [B] (float, may be fractional), context [B, T, contextDim].
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& timesteps, const torch::Tensor& context);

    UNetConfig config;
    torch::nn::Sequential time_embed{nullptr};  // 0 Linear, 1 SiLU, 2 Linear
    torch::nn::ModuleList input_blocks{nullptr};
    torch::nn::ModuleList middle_block{nullptr};
    torch::nn::ModuleList output_blocks{nullptr};
    torch::nn::Sequential out{nullptr};  // 0 GroupNorm32, 1 SiLU, 2 Conv3x3
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace easel::inference
