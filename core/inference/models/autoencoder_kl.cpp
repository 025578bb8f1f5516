#include "inference/models/autoencoder_kl.h"

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

}  // namespace easel::inference
