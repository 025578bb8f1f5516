#include "inference/models/unet_2d_condition.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "inference/models/blocks/checkpoint.h"
#include "inference/models/blocks/unet_blocks.h"

namespace easel::inference {
namespace {

// Runs one TimestepEmbedSequential: each child gets what it needs (emb for ResBlocks, context for
// transformers). With `checkpoint` (training), ResBlocks and transformers keep only their inputs for the
// backward pass.
torch::Tensor runSequence(const torch::nn::ModuleList& seq, torch::Tensor h, const torch::Tensor& emb,
                          const torch::Tensor& context, bool checkpoint, const torch::Tensor& nextSkip = {}) {
    for (const auto& child : *seq) {
        if (auto* res = child->as<ResBlockImpl>()) {
            h = checkpoint ? checkpointed([res](const auto& in) { return res->forward(in[0], in[1]); }, {h, emb})
                           : res->forward(h, emb);
        } else if (auto* st = child->as<SpatialTransformerImpl>()) {
            h = checkpoint ? checkpointed([st](const auto& in) { return st->forward(in[0], in[1]); }, {h, context})
                           : st->forward(h, context);
        } else if (auto* down = child->as<DownsampleImpl>()) {
            h = down->forward(h);
        } else if (auto* up = child->as<UpsampleImpl>()) {
            // Upsample to the next skip's size (diffusers' upsample_size), so that latent sizes that
            // are not multiples of 2^levels still line up, e.g. 520x520 pixels -> 65x65 latents.
            h = nextSkip.defined() ? up->forward(h, {nextSkip.size(2), nextSkip.size(3)}) : up->forward(h);
        } else if (auto* conv = child->as<torch::nn::Conv2dImpl>()) {
            h = conv->forward(h);
        }
    }
    return h;
}

bool hasAttention(const UNetConfig& c, int level) {
    return std::find(c.attentionLevels.begin(), c.attentionLevels.end(), level) != c.attentionLevels.end();
}

SpatialTransformer makeTransformer(const UNetConfig& c, int channels, int depth) {
    const int heads = c.headsFor(channels);
    TORCH_CHECK(heads > 0, "a SpatialTransformer of ", channels, " channels cannot have ", heads, " heads");
    return SpatialTransformer(channels, heads, channels / heads, depth, c.contextDim, c.linearProjection);
}

}  // namespace

torch::Tensor timestepEmbedding(const torch::Tensor& timesteps, int dim) {
    const int half = dim / 2;
    auto freqs =
        torch::exp(-std::log(10000.0) * torch::arange(0, half, timesteps.options().dtype(torch::kFloat32)) / half);
    auto args = timesteps.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);
    auto emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);
    if (dim % 2 == 1) emb = torch::cat({emb, torch::zeros_like(emb.narrow(1, 0, 1))}, -1);
    return emb;
}

UNet2DConditionModelImpl::UNet2DConditionModelImpl(UNetConfig cfg) : config(std::move(cfg)) {
    const int mc = config.modelChannels;
    const int embDim = config.timeEmbedDim();
    time_embed = register_module("time_embed", torch::nn::Sequential(torch::nn::Linear(mc, embDim), torch::nn::SiLU(),
                                                                     torch::nn::Linear(embDim, embDim)));
    if (config.admInChannels > 0) {
        label_emb = register_module("label_emb", torch::nn::ModuleList());
        label_emb->push_back(torch::nn::Sequential(torch::nn::Linear(config.admInChannels, embDim), torch::nn::SiLU(),
                                                   torch::nn::Linear(embDim, embDim)));
    }

    input_blocks = register_module("input_blocks", torch::nn::ModuleList());
    auto first = torch::nn::ModuleList();
    first->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(config.inChannels, mc, 3).padding(1)));
    input_blocks->push_back(first);

    std::vector<int> skipChannels{mc};
    int ch = mc;
    const int levels = static_cast<int>(config.channelMult.size());
    for (int level = 0; level < levels; ++level) {
        const int outCh = mc * config.channelMult[level];
        for (int i = 0; i < config.numResBlocks; ++i) {
            auto block = torch::nn::ModuleList();
            block->push_back(ResBlock(ch, outCh, embDim));
            ch = outCh;
            if (hasAttention(config, level)) block->push_back(makeTransformer(config, ch, config.depthAt(level)));
            input_blocks->push_back(block);
            skipChannels.push_back(ch);
        }
        if (level != levels - 1) {
            auto block = torch::nn::ModuleList();
            block->push_back(Downsample(ch));
            input_blocks->push_back(block);
            skipChannels.push_back(ch);
        }
    }

    middle_block = register_module("middle_block", torch::nn::ModuleList());
    middle_block->push_back(ResBlock(ch, ch, embDim));
    middle_block->push_back(makeTransformer(config, ch, config.middleTransformerDepth));
    middle_block->push_back(ResBlock(ch, ch, embDim));

    output_blocks = register_module("output_blocks", torch::nn::ModuleList());
    for (int level = levels - 1; level >= 0; --level) {
        const int outCh = mc * config.channelMult[level];
        for (int i = 0; i <= config.numResBlocks; ++i) {
            auto block = torch::nn::ModuleList();
            const int skip = skipChannels.back();
            skipChannels.pop_back();
            block->push_back(ResBlock(ch + skip, outCh, embDim));
            ch = outCh;
            if (hasAttention(config, level)) block->push_back(makeTransformer(config, ch, config.depthAt(level)));
            if (level != 0 && i == config.numResBlocks) block->push_back(Upsample(ch));
            output_blocks->push_back(block);
        }
    }

    out = register_module(
        "out",
        torch::nn::Sequential(torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, ch).eps(1e-5)), torch::nn::SiLU(),
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, config.outChannels, 3).padding(1))));
}

torch::Tensor UNet2DConditionModelImpl::embedding(const torch::Tensor& timesteps, const torch::Tensor& y,
                                                  torch::Dtype dtype) {
    auto emb = time_embed->forward(timestepEmbedding(timesteps, config.modelChannels).to(dtype));
    if (!label_emb) return emb;
    if (!y.defined() || y.dim() != 2 || y.size(1) != config.admInChannels) {
        throw std::invalid_argument("this UNet needs the vector conditioning y of width " +
                                    std::to_string(config.admInChannels));
    }
    // sgm: emb = time_embed(t) + label_emb(y)
    return emb + labelEmbedding(y.to(dtype));
}

torch::Tensor UNet2DConditionModelImpl::labelEmbedding(const torch::Tensor& y) {
    if (!label_emb) throw std::invalid_argument("this UNet has no label_emb (not SDXL)");
    return label_emb[std::size_t{0}]->as<torch::nn::SequentialImpl>()->forward(y);
}

torch::Tensor UNet2DConditionModelImpl::forward(const torch::Tensor& x, const torch::Tensor& timesteps,
                                                const torch::Tensor& context, const torch::Tensor& y) {
    const auto emb = embedding(timesteps, y, x.scalar_type());
    const bool checkpoint = gradientCheckpointing && torch::GradMode::is_enabled();
    std::vector<torch::Tensor> skips;
    auto h = x;
    for (const auto& block : *input_blocks) {
        h = runSequence(torch::nn::ModuleList(std::dynamic_pointer_cast<torch::nn::ModuleListImpl>(block)), h, emb,
                        context, checkpoint);
        skips.push_back(h);
    }
    h = runSequence(middle_block, h, emb, context, checkpoint);
    for (const auto& block : *output_blocks) {
        h = torch::cat({h, skips.back()}, 1);
        skips.pop_back();
        h = runSequence(torch::nn::ModuleList(std::dynamic_pointer_cast<torch::nn::ModuleListImpl>(block)), h, emb,
                        context, checkpoint, skips.empty() ? torch::Tensor() : skips.back());
    }
    h = groupNormSiLU(torch::nn::GroupNorm(out->ptr<torch::nn::GroupNormImpl>(0)), h);
    return out->ptr<torch::nn::Conv2dImpl>(2)->forward(h);
}

}  // namespace easel::inference
