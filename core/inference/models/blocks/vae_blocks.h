#pragma once
// Building blocks of the LDM AutoencoderKL (ldm/modules/diffusionmodules/model.py). GroupNorm eps
// is 1e-6 throughout; there is no timestep embedding.

#include <torch/torch.h>

#include "inference/models/blocks/unet_blocks.h"

namespace easel::inference {

struct VAEResnetBlockImpl : torch::nn::Module {
    VAEResnetBlockImpl(int inChannels, int outChannels);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, nin_shortcut{nullptr};
};
TORCH_MODULE(VAEResnetBlock);

// Single-head self-attention over pixels with 1x1 conv q/k/v/proj_out ("vanilla" AttnBlock).
struct VAEAttnBlockImpl : torch::nn::Module {
    explicit VAEAttnBlockImpl(int channels);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::GroupNorm norm{nullptr};
    torch::nn::Conv2d q{nullptr}, k{nullptr}, v{nullptr}, proj_out{nullptr};
};
TORCH_MODULE(VAEAttnBlock);

// Encoder downsampling: pad (0,1,0,1) with zeros, then a stride-2 3x3 conv without padding.
struct VAEDownsampleImpl : torch::nn::Module {
    explicit VAEDownsampleImpl(int channels);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(VAEDownsample);

struct VAEUpsampleImpl : torch::nn::Module {
    explicit VAEUpsampleImpl(int channels);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Conv2d conv{nullptr};
    UpsampleConv2x fused;
};
TORCH_MODULE(VAEUpsample);

// The "mid" of encoder and decoder: block_1, attn_1, block_2.
struct VAEMidImpl : torch::nn::Module {
    explicit VAEMidImpl(int channels);
    torch::Tensor forward(const torch::Tensor& x);
    VAEResnetBlock block_1{nullptr}, block_2{nullptr};
    VAEAttnBlock attn_1{nullptr};
};
TORCH_MODULE(VAEMid);

// One resolution level: "block" (ModuleList of resnets) and optionally "downsample"/"upsample".
struct VAELevelImpl : torch::nn::Module {
    torch::nn::ModuleList block{nullptr};
    VAEDownsample downsample{nullptr};
    VAEUpsample upsample{nullptr};
};
TORCH_MODULE(VAELevel);

}  // namespace easel::inference
