#include "inference/models/blocks/unet_blocks.h"

#include <algorithm>
#include <cmath>

namespace easel::inference {
namespace {

torch::nn::Conv2d conv(int in, int out, int kernel, int stride = 1, int padding = 0) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding));
}

torch::nn::GroupNorm groupNorm(int channels, double eps) {
    return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(eps));
}

}  // namespace

torch::Tensor groupNormFloat32(torch::nn::GroupNorm norm, const torch::Tensor& x) {
    if (x.scalar_type() == torch::kFloat32) return norm(x);
    const auto& o = norm->options;
    return torch::group_norm(x.to(torch::kFloat32), o.num_groups(), norm->weight.to(torch::kFloat32),
                             norm->bias.to(torch::kFloat32), o.eps())
        .to(x.scalar_type());
}

torch::Tensor multiHeadAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int heads,
                                 const torch::Tensor& mask) {
    // q, k, v: [B, T, heads*d] -> [B*heads, T, d]
    const auto b = q.size(0);
    const auto d = q.size(2) / heads;
    auto split = [&](const torch::Tensor& t) {
        return t.reshape({b, t.size(1), heads, d}).permute({0, 2, 1, 3}).reshape({b * heads, t.size(1), d});
    };
    auto qh = split(q), kh = split(k), vh = split(v);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    // Score matrices grow as tokens^2 (4096^2 floats per head at 512x512): slice over batch*heads and,
    // for very long sequences, over queries too, so that one slice stays near 64 MiB of scores.
    const auto bh = qh.size(0), tq = qh.size(1), tk = kh.size(1);
    constexpr int64_t kBudget = int64_t{16} << 20;  // score elements per slice
    const int64_t qChunk = std::clamp<int64_t>(kBudget / std::max<int64_t>(1, tk), 1, tq);
    const int64_t perSlice = std::max<int64_t>(1, kBudget / std::max<int64_t>(1, qChunk * tk));
    const bool single = perSlice >= bh && qChunk >= tq;
    torch::Tensor out = single ? torch::Tensor() : torch::empty_like(qh);
    for (int64_t s0 = 0; s0 < bh; s0 += perSlice) {
        const auto n = std::min(perSlice, bh - s0);
        auto ks = kh.narrow(0, s0, n), vs = vh.narrow(0, s0, n);
        for (int64_t q0 = 0; q0 < tq; q0 += qChunk) {
            const auto m = std::min(qChunk, tq - q0);
            auto qs = qh.narrow(0, s0, n).narrow(1, q0, m);
            torch::Tensor scores;
            if (mask.defined()) {
                scores = torch::baddbmm(mask.narrow(0, q0, m).expand({n, m, tk}), qs, ks.transpose(1, 2), 1.0, scale);
            } else {
                scores = torch::bmm(qs, ks.transpose(1, 2)).mul_(scale);
            }
            auto part = torch::bmm(scores.softmax(-1), vs);
            if (single) {
                out = part;
            } else {
                out.narrow(0, s0, n).narrow(1, q0, m).copy_(part);
            }
        }
    }
    return out.reshape({b, heads, q.size(1), d}).permute({0, 2, 1, 3}).reshape({b, q.size(1), heads * d});
}

ResBlockImpl::ResBlockImpl(int inChannels, int outChannels, int embChannels) {
    in_layers = register_module("in_layers", torch::nn::Sequential(groupNorm(inChannels, 1e-5), torch::nn::SiLU(),
                                                                   conv(inChannels, outChannels, 3, 1, 1)));
    emb_layers = register_module("emb_layers",
                                 torch::nn::Sequential(torch::nn::SiLU(), torch::nn::Linear(embChannels, outChannels)));
    out_layers = register_module(
        "out_layers", torch::nn::Sequential(groupNorm(outChannels, 1e-5), torch::nn::SiLU(), torch::nn::Dropout(0.0),
                                            conv(outChannels, outChannels, 3, 1, 1)));
    if (inChannels != outChannels)
        skip_connection = register_module("skip_connection", conv(inChannels, outChannels, 1));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
    auto h = groupNormFloat32(torch::nn::GroupNorm(in_layers->ptr<torch::nn::GroupNormImpl>(0)), x);
    h = torch::silu(h);
    h = in_layers->ptr<torch::nn::Conv2dImpl>(2)->forward(h);
    auto e = emb_layers->ptr<torch::nn::LinearImpl>(1)->forward(torch::silu(emb));
    h = h + e.unsqueeze(-1).unsqueeze(-1);
    h = groupNormFloat32(torch::nn::GroupNorm(out_layers->ptr<torch::nn::GroupNormImpl>(0)), h);
    h = out_layers->ptr<torch::nn::Conv2dImpl>(3)->forward(torch::silu(h));
    return (skip_connection ? skip_connection->forward(x) : x) + h;
}

CrossAttentionImpl::CrossAttentionImpl(int queryDim, int contextDim, int heads_, int dimHead) : heads(heads_) {
    const int inner = heads_ * dimHead;
    to_q = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(queryDim, inner).bias(false)));
    to_k = register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(contextDim, inner).bias(false)));
    to_v = register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(contextDim, inner).bias(false)));
    to_out =
        register_module("to_out", torch::nn::Sequential(torch::nn::Linear(inner, queryDim), torch::nn::Dropout(0.0)));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
    const auto& ctx = context.defined() ? context : x;
    auto out = multiHeadAttention(to_q(x), to_k(ctx), to_v(ctx), heads);
    return to_out->ptr<torch::nn::LinearImpl>(0)->forward(out);
}

GEGLUImpl::GEGLUImpl(int dimIn, int dimOut) { proj = register_module("proj", torch::nn::Linear(dimIn, dimOut * 2)); }

torch::Tensor GEGLUImpl::forward(const torch::Tensor& x) {
    auto parts = proj(x).chunk(2, -1);
    return parts[0] * torch::gelu(parts[1]);
}

FeedForwardImpl::FeedForwardImpl(int dim) {
    net = register_module(
        "net", torch::nn::Sequential(GEGLU(dim, dim * 4), torch::nn::Dropout(0.0), torch::nn::Linear(dim * 4, dim)));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
    auto h = net->ptr<GEGLUImpl>(0)->forward(x);
    return net->ptr<torch::nn::LinearImpl>(2)->forward(h);
}

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int dim, int heads, int dimHead, int contextDim) {
    attn1 = register_module("attn1", CrossAttention(dim, dim, heads, dimHead));
    ff = register_module("ff", FeedForward(dim));
    attn2 = register_module("attn2", CrossAttention(dim, contextDim, heads, dimHead));
    auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)); };
    norm1 = register_module("norm1", ln());
    norm2 = register_module("norm2", ln());
    norm3 = register_module("norm3", ln());
}

torch::Tensor BasicTransformerBlockImpl::forward(torch::Tensor x, const torch::Tensor& context) {
    x = x + attn1->forward(norm1(x), torch::Tensor());
    x = x + attn2->forward(norm2(x), context);
    return x + ff->forward(norm3(x));
}

SpatialTransformerImpl::SpatialTransformerImpl(int channels, int heads, int dimHead, int depth, int contextDim,
                                               bool linear)
    : linearProjection(linear) {
    norm = register_module("norm", groupNorm(channels, 1e-6));
    const int inner = heads * dimHead;
    if (linear) {
        proj_in = torch::nn::AnyModule(register_module("proj_in", torch::nn::Linear(channels, inner)));
    } else {
        proj_in = torch::nn::AnyModule(register_module("proj_in", conv(channels, inner, 1)));
    }
    transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
    for (int i = 0; i < depth; ++i)
        transformer_blocks->push_back(BasicTransformerBlock(inner, heads, dimHead, contextDim));
    if (linear) {
        proj_out = torch::nn::AnyModule(register_module("proj_out", torch::nn::Linear(inner, channels)));
    } else {
        proj_out = torch::nn::AnyModule(register_module("proj_out", conv(inner, channels, 1)));
    }
}

torch::Tensor SpatialTransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
    const auto b = x.size(0), h = x.size(2), w = x.size(3);
    auto t = groupNormFloat32(norm, x);
    if (!linearProjection) t = proj_in.forward(t);
    t = t.flatten(2).transpose(1, 2);  // [B, H*W, C]
    if (linearProjection) t = proj_in.forward(t);
    for (const auto& block : *transformer_blocks) t = block->as<BasicTransformerBlockImpl>()->forward(t, context);
    if (linearProjection) t = proj_out.forward(t);
    t = t.transpose(1, 2).reshape({b, -1, h, w});
    if (!linearProjection) t = proj_out.forward(t);
    return t + x;
}

DownsampleImpl::DownsampleImpl(int channels) { op = register_module("op", conv(channels, channels, 3, 2, 1)); }
torch::Tensor DownsampleImpl::forward(const torch::Tensor& x) { return op(x); }

torch::Tensor UpsampleImpl::forward(const torch::Tensor& x, std::vector<int64_t> size) {
    namespace F = torch::nn::functional;
    return conv(F::interpolate(x, F::InterpolateFuncOptions().size(size).mode(torch::kNearest)));
}

UpsampleImpl::UpsampleImpl(int channels) {
    conv = register_module("conv", easel::inference::conv(channels, channels, 3, 1, 1));
}
torch::Tensor UpsampleImpl::forward(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    return conv(F::interpolate(
        x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
}

}  // namespace easel::inference
