#include "inference/models/blocks/vae_blocks.h"

#include <cmath>

#include "inference/models/blocks/unet_blocks.h"

namespace easel::inference {
namespace {

torch::nn::GroupNorm norm32(int channels) {
    return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(1e-6));
}
torch::nn::Conv2d conv(int in, int out, int kernel, int stride = 1, int padding = 0) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding));
}

}  // namespace

VAEResnetBlockImpl::VAEResnetBlockImpl(int in, int out) {
    norm1 = register_module("norm1", norm32(in));
    conv1 = register_module("conv1", conv(in, out, 3, 1, 1));
    norm2 = register_module("norm2", norm32(out));
    conv2 = register_module("conv2", conv(out, out, 3, 1, 1));
    if (in != out) nin_shortcut = register_module("nin_shortcut", conv(in, out, 1));
}

torch::Tensor VAEResnetBlockImpl::forward(const torch::Tensor& x) {
    auto h = conv1(groupNormSiLU(norm1, x));
    h = conv2(groupNormSiLU(norm2, h));
    return h.add_(nin_shortcut ? nin_shortcut(x) : x);
}

VAEAttnBlockImpl::VAEAttnBlockImpl(int c) {
    norm = register_module("norm", norm32(c));
    q = register_module("q", conv(c, c, 1));
    k = register_module("k", conv(c, c, 1));
    v = register_module("v", conv(c, c, 1));
    proj_out = register_module("proj_out", conv(c, c, 1));
}

torch::Tensor VAEAttnBlockImpl::forward(const torch::Tensor& x) {
    auto h = groupNormFloat32(norm, x);
    const auto b = x.size(0), c = x.size(1), hh = x.size(2), ww = x.size(3);
    auto toTokens = [&](const torch::Tensor& t) { return t.reshape({b, c, hh * ww}).transpose(1, 2); };  // [B, HW, C]
    auto out = multiHeadAttention(toTokens(q(h)), toTokens(k(h)), toTokens(v(h)), 1);
    out = out.transpose(1, 2).reshape({b, c, hh, ww});
    return x + proj_out(out);
}

VAEDownsampleImpl::VAEDownsampleImpl(int c) { conv = register_module("conv", easel::inference::conv(c, c, 3, 2, 0)); }
torch::Tensor VAEDownsampleImpl::forward(const torch::Tensor& x) {
    return conv(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));
}

VAEUpsampleImpl::VAEUpsampleImpl(int c) { conv = register_module("conv", easel::inference::conv(c, c, 3, 1, 1)); }
torch::Tensor VAEUpsampleImpl::forward(const torch::Tensor& x) { return fused.forward(conv, x); }

VAEMidImpl::VAEMidImpl(int c) {
    block_1 = register_module("block_1", VAEResnetBlock(c, c));
    attn_1 = register_module("attn_1", VAEAttnBlock(c));
    block_2 = register_module("block_2", VAEResnetBlock(c, c));
}
torch::Tensor VAEMidImpl::forward(const torch::Tensor& x) { return block_2(attn_1(block_1(x))); }

}  // namespace easel::inference
