#pragma once
// AutoencoderKL in the LDM layout: module names equal the keys after "first_stage_model.".

#include <torch/torch.h>

#include "inference/models/blocks/vae_blocks.h"
#include "inference/models/model_configs.h"

namespace easel::inference {

struct VAEEncoderImpl : torch::nn::Module {
    explicit VAEEncoderImpl(const VAEConfig& c);
    torch::Tensor forward(torch::Tensor x);
    torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
    torch::nn::ModuleList down{nullptr};
    VAEMid mid{nullptr};
    torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(VAEEncoder);

struct VAEDecoderImpl : torch::nn::Module {
    explicit VAEDecoderImpl(const VAEConfig& c);
    torch::Tensor forward(torch::Tensor z);
    torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
    VAEMid mid{nullptr};
    torch::nn::ModuleList up{nullptr};
    torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(VAEDecoder);

struct LatentDistribution {
    torch::Tensor mean, logvar, std;
};

struct AutoencoderKLImpl : torch::nn::Module {
    explicit AutoencoderKLImpl(VAEConfig config);
    // Image in [-1, 1] -> posterior moments (logvar clamped to [-30, 20]).
    LatentDistribution encode(const torch::Tensor& image);
    // Latents (already divided by the scaling factor) -> image, roughly in [-1, 1], unclamped.
    torch::Tensor decode(const torch::Tensor& z);
    // decode() in overlapping tiles of `tile` x `tile` latent positions, `overlap` shared between
    // neighbours, blended with linear ramps across each overlap, so the activations held at once follow
    // the tile and not the image (a 2048² SD decode needs several GB whole). Each tile's GroupNorms see
    // only that tile, so the result is close to decode() but not equal (diffusers' enable_vae_tiling
    // works the same way); latents no larger than one tile go through decode() unchanged.
    // Requires tile > overlap >= 0.
    torch::Tensor decodeTiled(const torch::Tensor& z, int tile, int overlap);

    VAEConfig config;
    VAEEncoder encoder{nullptr};
    VAEDecoder decoder{nullptr};
    torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};
TORCH_MODULE(AutoencoderKL);

}  // namespace easel::inference
