#include "inference/models/autoencoder_kl.h"

#include <algorithm>
#include <vector>

#include "inference/models/blocks/unet_blocks.h"

namespace easel::inference {
namespace {

torch::nn::Conv2d conv(int in, int out, int kernel, int padding) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).padding(padding));
}
torch::nn::GroupNorm norm32(int channels) {
    return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(1e-6));
}

}  // namespace

VAEEncoderImpl::VAEEncoderImpl(const VAEConfig& c) {
    conv_in = register_module("conv_in", conv(c.inChannels, c.ch, 3, 1));
    down = register_module("down", torch::nn::ModuleList());
    int ch = c.ch;
    const int levels = static_cast<int>(c.chMult.size());
    for (int level = 0; level < levels; ++level) {
        auto lvl = VAELevel();
        lvl->block = lvl->register_module("block", torch::nn::ModuleList());
        const int outCh = c.ch * c.chMult[level];
        for (int i = 0; i < c.numResBlocks; ++i) {
            lvl->block->push_back(VAEResnetBlock(ch, outCh));
            ch = outCh;
        }
        if (level != levels - 1) lvl->downsample = lvl->register_module("downsample", VAEDownsample(ch));
        down->push_back(lvl);
    }
    mid = register_module("mid", VAEMid(ch));
    norm_out = register_module("norm_out", norm32(ch));
    conv_out = register_module("conv_out", conv(ch, 2 * c.zChannels, 3, 1));
}

torch::Tensor VAEEncoderImpl::forward(torch::Tensor x) {
    x = conv_in(x);
    for (const auto& m : *down) {
        auto* lvl = m->as<VAELevelImpl>();
        for (const auto& b : *lvl->block) x = b->as<VAEResnetBlockImpl>()->forward(x);
        if (lvl->downsample) x = lvl->downsample(x);
    }
    x = mid(x);
    return conv_out(groupNormSiLU(norm_out, x));
}

VAEDecoderImpl::VAEDecoderImpl(const VAEConfig& c) {
    const int levels = static_cast<int>(c.chMult.size());
    int ch = c.ch * c.chMult.back();
    conv_in = register_module("conv_in", conv(c.zChannels, ch, 3, 1));
    mid = register_module("mid", VAEMid(ch));
    // up[i] is level i; they are built from the deepest level up, as in LDM's Decoder.
    std::vector<VAELevel> levelsBuilt(static_cast<std::size_t>(levels), nullptr);
    for (int level = levels - 1; level >= 0; --level) {
        auto lvl = VAELevel();
        lvl->block = lvl->register_module("block", torch::nn::ModuleList());
        const int outCh = c.ch * c.chMult[level];
        for (int i = 0; i <= c.numResBlocks; ++i) {
            lvl->block->push_back(VAEResnetBlock(ch, outCh));
            ch = outCh;
        }
        if (level != 0) lvl->upsample = lvl->register_module("upsample", VAEUpsample(ch));
        levelsBuilt[static_cast<std::size_t>(level)] = lvl;
    }
    up = register_module("up", torch::nn::ModuleList());
    for (auto& lvl : levelsBuilt) up->push_back(lvl);
    norm_out = register_module("norm_out", norm32(ch));
    conv_out = register_module("conv_out", conv(ch, c.outChannels, 3, 1));
}

torch::Tensor VAEDecoderImpl::forward(torch::Tensor z) {
    auto h = mid(conv_in(z));
    for (int level = static_cast<int>(up->size()) - 1; level >= 0; --level) {
        auto* lvl = up[static_cast<std::size_t>(level)]->as<VAELevelImpl>();
        for (const auto& b : *lvl->block) h = b->as<VAEResnetBlockImpl>()->forward(h);
        if (lvl->upsample) h = lvl->upsample(h);
    }
    return conv_out(groupNormSiLU(norm_out, h));
}

AutoencoderKLImpl::AutoencoderKLImpl(VAEConfig c) : config(std::move(c)) {
    encoder = register_module("encoder", VAEEncoder(config));
    decoder = register_module("decoder", VAEDecoder(config));
    quant_conv = register_module("quant_conv", conv(2 * config.zChannels, 2 * config.embedDim, 1, 0));
    post_quant_conv = register_module("post_quant_conv", conv(config.embedDim, config.zChannels, 1, 0));
}

LatentDistribution AutoencoderKLImpl::encode(const torch::Tensor& image) {
    auto moments = quant_conv(encoder(image));
    auto parts = moments.chunk(2, 1);
    LatentDistribution d;
    d.mean = parts[0];
    d.logvar = parts[1].clamp(-30.0, 20.0);
    d.std = torch::exp(0.5 * d.logvar);
    return d;
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& z) { return decoder(post_quant_conv(z)); }

namespace {

// Tile starts along one axis: every `stride`, the last one moved back so that it ends at the edge.
std::vector<std::int64_t> tileStarts(std::int64_t length, std::int64_t tile, std::int64_t stride) {
    std::vector<std::int64_t> starts;
    for (std::int64_t s = 0;; s += stride) {
        if (s + tile >= length) {
            starts.push_back(std::max<std::int64_t>(0, length - tile));
            break;
        }
        starts.push_back(s);
    }
    return starts;
}

// Blend weights of one tile along one axis, [size]: a ramp from 1/(ramp+1) up to 1 over the first
// `ramp` pixels where a neighbour overlaps before it, down over the last `ramp` where one overlaps after.
torch::Tensor ramp(std::int64_t size, std::int64_t before, std::int64_t after) {
    std::vector<float> w(static_cast<std::size_t>(size), 1.0f);
    for (std::int64_t i = 0; i < size; ++i) {
        auto& v = w[static_cast<std::size_t>(i)];
        if (i < before) v = std::min(v, static_cast<float>(i + 1) / static_cast<float>(before + 1));
        const auto fromEnd = size - 1 - i;
        if (fromEnd < after) v = std::min(v, static_cast<float>(fromEnd + 1) / static_cast<float>(after + 1));
    }
    return torch::tensor(w, torch::kFloat32);
}

}  // namespace

torch::Tensor AutoencoderKLImpl::decodeTiled(const torch::Tensor& z, int tile, int overlap) {
    TORCH_CHECK(tile > overlap && overlap >= 0, "decodeTiled needs tile > overlap >= 0");
    const auto h = z.size(2), w = z.size(3);
    if (h <= tile && w <= tile) return decode(z);
    const auto th = std::min<std::int64_t>(tile, h), tw = std::min<std::int64_t>(tile, w);
    const auto ys = tileStarts(h, th, tile - overlap);
    const auto xs = tileStarts(w, tw, tile - overlap);
    torch::Tensor sum, weight;
    std::int64_t factor = 0;
    // How far the neighbours before and after reach into tile i of an axis, in pixels.
    const auto shared = [&](const std::vector<std::int64_t>& starts, std::size_t i, std::int64_t size) {
        const auto before = i > 0 ? starts[i - 1] + size - starts[i] : 0;
        const auto after = i + 1 < starts.size() ? starts[i] + size - starts[i + 1] : 0;
        return std::pair{before * factor, after * factor};
    };
    for (std::size_t iy = 0; iy < ys.size(); ++iy) {
        for (std::size_t ix = 0; ix < xs.size(); ++ix) {
            const auto part = decode(z.narrow(2, ys[iy], th).narrow(3, xs[ix], tw)).to(torch::kFloat32);
            if (!sum.defined()) {
                factor = part.size(2) / th;
                sum = torch::zeros({z.size(0), part.size(1), h * factor, w * factor}, part.options());
                weight = torch::zeros({1, 1, h * factor, w * factor}, part.options());
            }
            const auto [top, bottom] = shared(ys, iy, th);
            const auto [left, right] = shared(xs, ix, tw);
            const auto wy = ramp(part.size(2), top, bottom).to(part.device()).view({1, 1, -1, 1});
            const auto wx = ramp(part.size(3), left, right).to(part.device()).view({1, 1, 1, -1});
            const auto wt = wy * wx;
            sum.narrow(2, ys[iy] * factor, part.size(2)).narrow(3, xs[ix] * factor, part.size(3)).add_(part * wt);
            weight.narrow(2, ys[iy] * factor, part.size(2)).narrow(3, xs[ix] * factor, part.size(3)).add_(wt);
        }
    }
    return (sum / weight).to(z.scalar_type());
}

}  // namespace easel::inference
