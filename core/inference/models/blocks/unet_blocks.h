#pragma once
// Building blocks of the LDM UNet (CompVis ldm/modules/diffusionmodules/openaimodel.py and
// ldm/modules/attention.py). Module names follow the checkpoint keys, so loading is a name lookup.

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace easel::inference {

// GroupNorm that runs in float32 whatever the model dtype, as LDM's GroupNorm32 does.
torch::Tensor groupNormFloat32(torch::nn::GroupNorm norm, const torch::Tensor& x);
// GroupNorm then SiLU, both in float32 (libtorch 1.13's bf16 SiLU is scalar and slow), back in x's dtype.
torch::Tensor groupNormSiLU(torch::nn::GroupNorm norm, const torch::Tensor& x);
// LayerNorm in float32 whatever the model dtype (libtorch 1.13's bf16 LayerNorm is scalar and slow).
torch::Tensor layerNormFloat32(torch::nn::LayerNorm norm, const torch::Tensor& x);

// Softmax attention over [B, heads, T, d] tensors; q is scaled by 1/sqrt(d).
torch::Tensor multiHeadAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int heads,
                                 const torch::Tensor& mask = {});

// Nearest-neighbour 2x upsampling followed by a 3x3 convolution with padding 1 (the LDM Upsample),
// computed without building the upsampled tensor. Each output pixel parity (row a, column b) sees
// only two input rows and two input columns: rows {i-1, i} with taps {W0, W1+W2} for a = 0, rows
// {i, i+1} with taps {W0+W1, W2} for a = 1, and the same for columns. So the four parities are one
// 2x2 convolution of the input (padding 1) with 4x the output channels, interleaved afterwards:
// 16 multiply-adds per input pixel and channel pair instead of 36 (2.25x fewer FLOPs). The summed
// weights are computed in float32 once and cached until the weight changes. `size` (default 2x) other
// than exactly 2x, or training, takes the plain upsample-then-convolve path.
class UpsampleConv2x {
public:
    torch::Tensor forward(torch::nn::Conv2d conv, const torch::Tensor& x, std::vector<int64_t> size = {});

private:
    torch::Tensor m_weight, m_bias;  // [4*out, in, 2, 2] and [4*out]
    const void* m_source = nullptr;
    std::uint32_t m_sourceVersion = 0;
    torch::Dtype m_sourceDtype = torch::kFloat32;
};

struct ResBlockImpl : torch::nn::Module {
    ResBlockImpl(int inChannels, int outChannels, int embChannels);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);

    torch::nn::Sequential in_layers{nullptr};    // 0 GroupNorm32, 1 SiLU, 2 Conv3x3
    torch::nn::Sequential emb_layers{nullptr};   // 0 SiLU, 1 Linear
    torch::nn::Sequential out_layers{nullptr};   // 0 GroupNorm32, 1 SiLU, 2 Dropout, 3 Conv3x3
    torch::nn::Conv2d skip_connection{nullptr};  // 1x1 when the channel count changes
};
TORCH_MODULE(ResBlock);

struct CrossAttentionImpl : torch::nn::Module {
    CrossAttentionImpl(int queryDim, int contextDim, int heads, int dimHead);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

    int heads;
    torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
    torch::nn::Sequential to_out{nullptr};  // 0 Linear, 1 Dropout
};
TORCH_MODULE(CrossAttention);

struct GEGLUImpl : torch::nn::Module {
    GEGLUImpl(int dimIn, int dimOut);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

struct FeedForwardImpl : torch::nn::Module {
    explicit FeedForwardImpl(int dim);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Sequential net{nullptr};  // 0 GEGLU, 1 Dropout, 2 Linear
};
TORCH_MODULE(FeedForward);

struct BasicTransformerBlockImpl : torch::nn::Module {
    BasicTransformerBlockImpl(int dim, int heads, int dimHead, int contextDim);
    torch::Tensor forward(torch::Tensor x, const torch::Tensor& context);

    CrossAttention attn1{nullptr}, attn2{nullptr};
    FeedForward ff{nullptr};
    torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

struct SpatialTransformerImpl : torch::nn::Module {
    SpatialTransformerImpl(int channels, int heads, int dimHead, int depth, int contextDim, bool linearProjection);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

    bool linearProjection;
    torch::nn::GroupNorm norm{nullptr};
    torch::nn::AnyModule proj_in, proj_out;  // Conv2d 1x1 (SD 1.x) or Linear (SD 2.x)
    torch::nn::ModuleList transformer_blocks{nullptr};
};
TORCH_MODULE(SpatialTransformer);

struct DownsampleImpl : torch::nn::Module {
    explicit DownsampleImpl(int channels);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Conv2d op{nullptr};
};
TORCH_MODULE(Downsample);

struct UpsampleImpl : torch::nn::Module {
    explicit UpsampleImpl(int channels);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor forward(const torch::Tensor& x, std::vector<int64_t> size);  // nearest to an exact size
    torch::nn::Conv2d conv{nullptr};
    UpsampleConv2x fused;
};
TORCH_MODULE(Upsample);

}  // namespace easel::inference
