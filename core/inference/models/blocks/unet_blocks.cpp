#include "inference/models/blocks/unet_blocks.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "inference/models/blocks/cpu_kernels.h"
#include "inference/models/blocks/low_rank_branch.h"

namespace easel::inference {
namespace {

torch::nn::Conv2d conv(int in, int out, int kernel, int stride = 1, int padding = 0) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding));
}

torch::nn::GroupNorm groupNorm(int channels, double eps) {
    return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(eps));
}

}  // namespace

namespace {

// GroupNorm of x computed and returned in float32, whatever x's dtype.
torch::Tensor groupNormInFloat32(torch::nn::GroupNorm norm, const torch::Tensor& x) {
    const auto& o = norm->options;
    return torch::group_norm(x.to(torch::kFloat32), o.num_groups(), norm->weight.to(torch::kFloat32),
                             norm->bias.to(torch::kFloat32), o.eps());
}

// GroupNorm (+ SiLU) by the AVX-512 kernel where it applies: inference on a channels-last bf16 CPU
// tensor. Measured with easel-bench --roofline: libtorch's passes (to float32, sums, square, silu, back)
// took ~1.2 s of a 3.8 s SD 1.5 VAE decode at 512x512.
std::optional<torch::Tensor> groupNormKernel(torch::nn::GroupNorm norm, const torch::Tensor& x, bool silu) {
    if (x.scalar_type() != torch::kBFloat16 || torch::GradMode::is_enabled() || x.dim() != 4 || !x.device().is_cpu() ||
        !x.is_contiguous(torch::MemoryFormat::ChannelsLast) || !norm->options.affine() || x.size(1) % 16 != 0 ||
        !kernels::available())
        return std::nullopt;
    auto out = torch::empty_like(x, x.options().memory_format(torch::MemoryFormat::ChannelsLast));
    const auto gamma = norm->weight.to(torch::kFloat32).contiguous();
    const auto beta = norm->bias.to(torch::kFloat32).contiguous();
    kernels::groupNormChannelsLastBF16(reinterpret_cast<const std::uint16_t*>(x.data_ptr<at::BFloat16>()),
                                       reinterpret_cast<std::uint16_t*>(out.data_ptr<at::BFloat16>()), x.size(0),
                                       x.size(2) * x.size(3), x.size(1), norm->options.num_groups(),
                                       gamma.data_ptr<float>(), beta.data_ptr<float>(), norm->options.eps(), silu);
    return out;
}

}  // namespace

torch::Tensor groupNormFloat32(torch::nn::GroupNorm norm, const torch::Tensor& x) {
    if (x.scalar_type() == torch::kFloat32) return norm(x);
    if (auto out = groupNormKernel(norm, x, false)) return *out;
    return groupNormInFloat32(norm, x).to(x.scalar_type());
}

namespace {

// GroupNorm + SiLU of a channels-last bf16 (or fp16) tensor, a block of pixels at a time. Pass one
// sums each channel's values and squares, shifted by the channel's mean over the first block so that
// a large mean cannot cancel the variance away; the channels' moments are merged into their groups in
// float64. Pass two normalises each block in float32 and writes it back in x's dtype. The float32
// copies are only ever one block, not the whole tensor (at 512x512 the VAE decoder's last levels hold
// 67M-value activations, whose whole float32 copies took 0.6 GiB of peak memory), and each value is
// read twice and written once. Reductions run over the pixel dimension only, which libtorch
// vectorises (var_mean over pixels and channels of a group took 10x longer).
torch::Tensor groupNormSiLUChannelsLast(torch::nn::GroupNorm norm, const torch::Tensor& x) {
    const auto n = x.size(0), c = x.size(1), pixels = x.size(2) * x.size(3);
    const auto groups = norm->options.num_groups();
    const auto perGroup = c / groups;
    const auto nhwc = x.permute({0, 2, 3, 1}).reshape({n, pixels, c});  // a view: x is channels-last
    constexpr int64_t kBlockValues = int64_t{1} << 20;
    const auto rows = std::clamp<int64_t>(kBlockValues / std::max<int64_t>(1, n * c), 1, pixels);
    torch::Tensor shiftK, sum1, sum2;  // [n, 1, c] float32; [n, c] float64
    for (int64_t r0 = 0; r0 < pixels; r0 += rows) {
        const auto m = std::min(rows, pixels - r0);
        auto block = nhwc.narrow(1, r0, m).to(torch::kFloat32);
        if (!shiftK.defined()) {
            shiftK = block.mean(1, /*keepdim=*/true);
            sum1 = torch::zeros({n, c}, torch::kFloat64);
            sum2 = torch::zeros({n, c}, torch::kFloat64);
        }
        block.sub_(shiftK);
        sum1 += block.sum(1).to(torch::kFloat64);
        sum2 += block.square_().sum(1).to(torch::kFloat64);
    }
    const double p = static_cast<double>(pixels);
    const auto channelMean = (shiftK.squeeze(1).to(torch::kFloat64) + sum1 / p).view({n, groups, perGroup});
    const auto channelM2 = (sum2 - sum1.square() / p).view({n, groups, perGroup});
    const auto mean = channelMean.mean(2);  // [n, groups]
    const auto m2 = channelM2.sum(2) + (channelMean - mean.unsqueeze(2)).square().sum(2) * p;
    const double count = p * static_cast<double>(perGroup);
    // silu(x * scale + shift) per (sample, channel), from the group statistics and the affine weights.
    const auto rstd = (m2 / count + norm->options.eps()).rsqrt();
    const auto gamma = norm->weight.to(torch::kFloat64).view({1, groups, perGroup});
    const auto beta = norm->bias.to(torch::kFloat64).view({1, groups, perGroup});
    const auto scale = (rstd.unsqueeze(2) * gamma).reshape({n, 1, c}).to(torch::kFloat32);
    const auto shift = (beta - (mean * rstd).unsqueeze(2) * gamma).reshape({n, 1, c}).to(torch::kFloat32);
    auto out = torch::empty_like(x, x.options().memory_format(torch::MemoryFormat::ChannelsLast));
    const auto outNhwc = out.permute({0, 2, 3, 1}).reshape({n, pixels, c});
    for (int64_t r0 = 0; r0 < pixels; r0 += rows) {
        const auto m = std::min(rows, pixels - r0);
        auto block = nhwc.narrow(1, r0, m).to(torch::kFloat32);
        outNhwc.narrow(1, r0, m).copy_(torch::silu_(block.mul_(scale).add_(shift)));
    }
    return out;
}

}  // namespace

torch::Tensor groupNormSiLU(torch::nn::GroupNorm norm, const torch::Tensor& x) {
    if (x.scalar_type() == torch::kFloat32) return torch::silu(norm(x));
    if (auto out = groupNormKernel(norm, x, true)) return *out;
    // The blockwise path works in place, so it is for inference only; training takes the plain one.
    if (!torch::GradMode::is_enabled() && x.dim() == 4 && x.device().is_cpu() &&
        x.is_contiguous(torch::MemoryFormat::ChannelsLast) && norm->options.affine())
        return groupNormSiLUChannelsLast(norm, x);
    auto h = groupNormInFloat32(norm, x);
    return torch::silu_(h).to(x.scalar_type());
}

torch::Tensor layerNormFloat32(torch::nn::LayerNorm norm, const torch::Tensor& x) {
    if (x.scalar_type() == torch::kFloat32) return norm(x);
    return torch::layer_norm(x.to(torch::kFloat32), norm->options.normalized_shape(), norm->weight.to(torch::kFloat32),
                             norm->bias.to(torch::kFloat32), norm->options.eps())
        .to(x.scalar_type());
}

namespace {

// Score matrices grow as tokens^2 (4096^2 per head at 512x512). They are computed a slice at a time
// (over batch*heads and, for long sequences, over queries) small enough to stay in the CPU's cache
// between the two matmuls and the softmax: about 1M scores (2 MiB in bf16). Measured on the SD 1.5 UNet
// at 512x512 in bf16, the best of four steps was ~7% faster than with 16M-score slices, which streamed
// every score through memory three times.
constexpr int64_t kScoreBudget = int64_t{1} << 20;  // score elements per slice

struct Slicing {
    int64_t qChunk, perSlice;
};
Slicing slicing(int64_t tq, int64_t tk) {
    const int64_t qChunk = std::clamp<int64_t>(kScoreBudget / std::max<int64_t>(1, tk), 1, tq);
    return {qChunk, std::max<int64_t>(1, kScoreBudget / std::max<int64_t>(1, qChunk * tk))};
}

// The softmax of a fresh score slice, as `dtype`. bf16 scores on an AVX-512 CPU take the in-place
// kernel (libtorch 1.13's bf16 softmax took ~0.9 s of a 4 s SD 1.5 UNet step at 512x512, more than the
// two matmuls around it); scores that autograd tracks keep libtorch's.
torch::Tensor probabilities(torch::Tensor scores, torch::ScalarType dtype) {
    if (scores.scalar_type() == torch::kBFloat16 && dtype == torch::kBFloat16 && scores.device().is_cpu() &&
        scores.is_contiguous() && !scores.requires_grad() && kernels::available()) {
        kernels::softmaxRowsBF16(reinterpret_cast<std::uint16_t*>(scores.data_ptr<at::BFloat16>()),
                                 scores.numel() / scores.size(-1), scores.size(-1));
        return scores;
    }
    return scores.softmax(-1).to(dtype);  // (autocast may widen softmax)
}

// softmax(q k^T + mask) v over [BH, T, d] (q already scaled), a slice at a time, into a new tensor.
torch::Tensor slicedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& mask) {
    const auto bh = q.size(0), tq = q.size(1), tk = k.size(1);
    const auto [qChunk, perSlice] = slicing(tq, tk);
    auto out = torch::empty_like(q);
    for (int64_t s0 = 0; s0 < bh; s0 += perSlice) {
        const auto n = std::min(perSlice, bh - s0);
        const auto ks = k.narrow(0, s0, n), vs = v.narrow(0, s0, n);
        for (int64_t q0 = 0; q0 < tq; q0 += qChunk) {
            const auto m = std::min(qChunk, tq - q0);
            const auto qs = q.narrow(0, s0, n).narrow(1, q0, m);
            const auto scores = mask.defined()
                                    ? torch::baddbmm(mask.narrow(0, q0, m).expand({n, m, tk}), qs, ks.transpose(1, 2))
                                    : torch::bmm(qs, ks.transpose(1, 2));
            auto slice = out.narrow(0, s0, n).narrow(1, q0, m);
            torch::bmm_out(slice, probabilities(scores, q.scalar_type()), vs);
        }
    }
    return out;
}

// softmax(q k^T) v over [BH, T, d] (q already scaled), for training: the forward pass keeps no score
// matrix, and the backward pass recomputes each slice's probabilities P while they are in cache
// (FlashAttention's backward, Dao et al. 2022): dV += P^T dO, dP = dO V^T,
// dS = P * (dP - rowsum(dO * O)), dQ = dS K, dK += dS^T Q. Keeping every P for autograd instead
// wrote ~1.4 GB per SD 1.5 step at 512x512 and made the softmax six times slower than in inference.
struct SlicedAttention : torch::autograd::Function<SlicedAttention> {
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v) {
        auto out = slicedAttention(q, k, v, {});
        ctx->save_for_backward({q, k, v, out});
        return out;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3];
        const auto dOut = grads[0].to(q.scalar_type()).contiguous();
        const auto bh = q.size(0), tq = q.size(1), tk = k.size(1);
        const auto [qChunk, perSlice] = slicing(tq, tk);
        // rowsum(dO * O) = rowsum(dP * P): the softmax backward's correction, per query.
        const auto rowDot = (dOut.to(torch::kFloat32) * out.to(torch::kFloat32)).sum(-1, true).to(q.scalar_type());
        auto dq = torch::empty_like(q);
        // dK and dV sum over the query chunks: float32 accumulators.
        auto dk = torch::zeros(k.sizes(), k.options().dtype(torch::kFloat32));
        auto dv = torch::zeros(v.sizes(), v.options().dtype(torch::kFloat32));
        for (int64_t s0 = 0; s0 < bh; s0 += perSlice) {
            const auto n = std::min(perSlice, bh - s0);
            const auto ks = k.narrow(0, s0, n), vs = v.narrow(0, s0, n);
            auto dks = dk.narrow(0, s0, n), dvs = dv.narrow(0, s0, n);
            for (int64_t q0 = 0; q0 < tq; q0 += qChunk) {
                const auto m = std::min(qChunk, tq - q0);
                const auto qs = q.narrow(0, s0, n).narrow(1, q0, m);
                const auto dOs = dOut.narrow(0, s0, n).narrow(1, q0, m);
                const auto p = torch::bmm(qs, ks.transpose(1, 2)).softmax(-1).to(q.scalar_type());  // [n, m, tk]
                dvs.add_(torch::bmm(p.transpose(1, 2), dOs));
                auto dS = torch::bmm(dOs, vs.transpose(1, 2));  // dP
                dS.sub_(rowDot.narrow(0, s0, n).narrow(1, q0, m)).mul_(p);
                auto dqs = dq.narrow(0, s0, n).narrow(1, q0, m);
                torch::bmm_out(dqs, dS, ks);
                dks.add_(torch::bmm(dS.transpose(1, 2), qs));
            }
        }
        return {dq, dk.to(k.scalar_type()), dv.to(v.scalar_type())};
    }
};

}  // namespace

torch::Tensor multiHeadAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int heads,
                                 const torch::Tensor& mask) {
    // q, k, v: [B, T, heads*d] -> [B*heads, T, d]
    const auto b = q.size(0);
    const auto d = q.size(2) / heads;
    auto split = [&](const torch::Tensor& t) {
        return t.reshape({b, t.size(1), heads, d}).permute({0, 2, 1, 3}).reshape({b * heads, t.size(1), d});
    };
    // The 1/sqrt(d) scale goes on q (tokens x d values) rather than on the scores (tokens^2).
    auto qh = split(q) * (1.0 / std::sqrt(static_cast<double>(d)));
    auto kh = split(k), vh = split(v);
    const auto bh = qh.size(0), tq = qh.size(1), tk = kh.size(1);
    const auto [qChunk, perSlice] = slicing(tq, tk);
    const bool training =
        torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
    auto merge = [&](const torch::Tensor& t) {
        return t.reshape({b, heads, q.size(1), d}).permute({0, 2, 1, 3}).reshape({b, q.size(1), heads * d});
    };
    if (training && !mask.defined())
        return merge(SlicedAttention::apply(qh.contiguous(), kh.contiguous(), vh.contiguous()));
    if (training) {
        // Masked (the text encoder's 77 tokens): plain autograd, each slice its own tensor, joined once
        // at the end (copying slices into one tensor would put a CopySlices node, whose backward copies
        // the whole output, on each slice).
        std::vector<torch::Tensor> rows;
        for (int64_t s0 = 0; s0 < bh; s0 += perSlice) {
            const auto n = std::min(perSlice, bh - s0);
            auto ks = kh.narrow(0, s0, n), vs = vh.narrow(0, s0, n);
            std::vector<torch::Tensor> chunks;
            for (int64_t q0 = 0; q0 < tq; q0 += qChunk) {
                const auto m = std::min(qChunk, tq - q0);
                auto qs = qh.narrow(0, s0, n).narrow(1, q0, m);
                auto scores = torch::baddbmm(mask.narrow(0, q0, m).expand({n, m, tk}), qs, ks.transpose(1, 2));
                chunks.push_back(torch::bmm(scores.softmax(-1), vs));
            }
            rows.push_back(chunks.size() == 1 ? chunks[0] : torch::cat(chunks, 1));
        }
        return merge(rows.size() == 1 ? rows[0] : torch::cat(rows, 0));
    }
    return merge(slicedAttention(qh, kh, vh, mask));
}

torch::Tensor UpsampleConv2x::forward(torch::nn::Conv2d conv, const torch::Tensor& x, std::vector<int64_t> size) {
    if (size.empty()) size = {2 * x.size(2), 2 * x.size(3)};
    const auto& w = conv->weight;
    // The plain path: any size other than exactly 2x (diffusers' upsample_size for odd latents), and
    // training, where the cached folded weights would carry no gradient back to the conv.
    if (size.size() != 2 || size[0] != 2 * x.size(2) || size[1] != 2 * x.size(3) ||
        (torch::GradMode::is_enabled() && w.requires_grad())) {
        namespace F = torch::nn::functional;
        return conv->forward(F::interpolate(x, F::InterpolateFuncOptions().size(size).mode(torch::kNearest)));
    }
    if (!m_weight.defined() || m_source != w.data_ptr() || m_sourceVersion != w._version() ||
        m_sourceDtype != w.scalar_type()) {
        torch::NoGradGuard noGrad;
        const auto wf = w.to(torch::kFloat32);  // [out, in, 3, 3]
        // Taps for parity 0 and 1 along one axis: {W0, W1+W2} and {W0+W1, W2}.
        auto fold = [](const torch::Tensor& t, int64_t dim, int parity) {
            auto k0 = t.select(dim, 0), k1 = t.select(dim, 1), k2 = t.select(dim, 2);
            return parity == 0 ? torch::stack({k0, k1 + k2}, dim) : torch::stack({k0 + k1, k2}, dim);
        };
        std::vector<torch::Tensor> phases;
        for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b) phases.push_back(fold(fold(wf, 2, a), 3, b));
        m_weight = torch::cat(phases, 0).to(w.scalar_type()).contiguous(w.suggest_memory_format());
        m_bias = conv->bias.defined() ? conv->bias.repeat({4}) : torch::Tensor();
        m_source = w.data_ptr();
        m_sourceVersion = w._version();
        m_sourceDtype = w.scalar_type();
    }
    const auto n = x.size(0), h = x.size(2), wd = x.size(3), out = w.size(0);
    // [n, 4*out, h+1, w+1]: parity (a, b) of output pixel (2i+a, 2j+b) is at [(2a+b)*out + o, i+a, j+b].
    const auto all = torch::conv2d(x, m_weight, m_bias, 1, 1);
    auto y = torch::empty({n, out, 2 * h, 2 * wd}, x.options().memory_format(x.suggest_memory_format()));
    for (int a = 0; a < 2; ++a) {
        for (int b = 0; b < 2; ++b) {
            y.slice(2, a, 2 * h, 2)
                .slice(3, b, 2 * wd, 2)
                .copy_(all.narrow(1, (2 * a + b) * out, out).narrow(2, a, h).narrow(3, b, wd));
        }
    }
    return y;
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
    auto h = groupNormSiLU(torch::nn::GroupNorm(in_layers->ptr<torch::nn::GroupNormImpl>(0)), x);
    h = in_layers->ptr<torch::nn::Conv2dImpl>(2)->forward(h);
    auto e = emb_layers->ptr<torch::nn::LinearImpl>(1)->forward(torch::silu(emb));
    h = h + e.unsqueeze(-1).unsqueeze(-1);
    h = groupNormSiLU(torch::nn::GroupNorm(out_layers->ptr<torch::nn::GroupNormImpl>(0)), h);
    h = out_layers->ptr<torch::nn::Conv2dImpl>(3)->forward(h);
    return h.add_(skip_connection ? skip_connection->forward(x) : x);
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
    auto out = multiHeadAttention(withBranch(*to_q, x), withBranch(*to_k, ctx), withBranch(*to_v, ctx), heads);
    return withBranch(*to_out->ptr<torch::nn::LinearImpl>(0), out);
}

GEGLUImpl::GEGLUImpl(int dimIn, int dimOut) { proj = register_module("proj", torch::nn::Linear(dimIn, dimOut * 2)); }

torch::Tensor GEGLUImpl::forward(const torch::Tensor& x) {
    auto parts = withBranch(*proj, x).chunk(2, -1);
    if (x.scalar_type() == torch::kFloat32) return parts[0] * torch::gelu(parts[1]);
    // bf16 GELU is scalar in libtorch 1.13: run it in float32 and multiply in place.
    auto gate = torch::gelu(parts[1].to(torch::kFloat32));
    return gate.mul_(parts[0]).to(x.scalar_type());
}

FeedForwardImpl::FeedForwardImpl(int dim) {
    net = register_module(
        "net", torch::nn::Sequential(GEGLU(dim, dim * 4), torch::nn::Dropout(0.0), torch::nn::Linear(dim * 4, dim)));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
    auto h = net->ptr<GEGLUImpl>(0)->forward(x);
    return withBranch(*net->ptr<torch::nn::LinearImpl>(2), h);
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
    x = x + attn1->forward(layerNormFloat32(norm1, x), torch::Tensor());
    x = x + attn2->forward(layerNormFloat32(norm2, x), context);
    return x + ff->forward(layerNormFloat32(norm3, x));
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
    if (!linearProjection) t = withBranch(proj_in, t);
    t = t.flatten(2).transpose(1, 2);  // [B, H*W, C]
    if (linearProjection) t = withBranch(proj_in, t);
    for (const auto& block : *transformer_blocks) t = block->as<BasicTransformerBlockImpl>()->forward(t, context);
    if (linearProjection) t = withBranch(proj_out, t);
    t = t.transpose(1, 2).reshape({b, -1, h, w});
    if (!linearProjection) t = withBranch(proj_out, t);
    return t + x;
}

DownsampleImpl::DownsampleImpl(int channels) { op = register_module("op", conv(channels, channels, 3, 2, 1)); }
torch::Tensor DownsampleImpl::forward(const torch::Tensor& x) { return op(x); }

torch::Tensor UpsampleImpl::forward(const torch::Tensor& x, std::vector<int64_t> size) {
    return fused.forward(conv, x, std::move(size));
}

UpsampleImpl::UpsampleImpl(int channels) {
    conv = register_module("conv", easel::inference::conv(channels, channels, 3, 1, 1));
}
torch::Tensor UpsampleImpl::forward(const torch::Tensor& x) { return fused.forward(conv, x); }

}  // namespace easel::inference
