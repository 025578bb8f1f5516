#include "inference/models/clip_text_model.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "inference/models/blocks/low_rank_branch.h"
#include "inference/models/blocks/unet_blocks.h"

namespace easel::inference {
namespace {

torch::nn::LayerNorm layerNorm(const TextEncoderConfig& c) {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hiddenSize}).eps(c.layerNormEps));
}

torch::Tensor activation(const torch::Tensor& x, bool quick) {
    return quick ? x * torch::sigmoid(1.702 * x) : torch::gelu(x);
}

torch::Tensor pooledAtEos(const torch::Tensor& hidden, const torch::Tensor& ids) {
    auto eos = ids.to(torch::kLong).argmax(-1);
    return hidden.index({torch::arange(hidden.size(0)), eos});
}

// Number of layers to run for an A1111 clip skip, never below one.
int layersFor(const TextEncoderConfig& c, int clipSkip) {
    const int skip = c.defaultSkippedLayers + std::max(clipSkip, 1) - 1;
    return std::max(1, c.numLayers - skip);
}

}  // namespace

torch::Tensor applyTokenEmbeddingOverride(torch::Tensor embeds, const TokenEmbeddingOverride& override) {
    if (override.empty()) return embeds;
    const auto positions = override.positions.to(embeds.device(), torch::kLong).reshape({-1});
    const auto vectors = override.vectors.to(embeds.device(), embeds.scalar_type());
    const auto length = embeds.size(1);
    if (vectors.dim() != 2 || vectors.size(0) != positions.size(0) || vectors.size(1) != embeds.size(2)) {
        throw std::invalid_argument("token-embedding override: expected " + std::to_string(positions.size(0)) +
                                    " vectors of size " + std::to_string(embeds.size(2)) + ", got " +
                                    c10::str(vectors.sizes()));
    }
    if (positions.min().item<std::int64_t>() < 0 || positions.max().item<std::int64_t>() >= length) {
        throw std::invalid_argument("token-embedding override: a position is outside the " + std::to_string(length) +
                                    " tokens");
    }
    // Out of place, so that the embedding table's autograd graph (training) is left alone.
    auto out = embeds.clone();
    out.index_put_({torch::indexing::Slice(), positions}, vectors.unsqueeze(0).expand({out.size(0), -1, -1}));
    return out;
}

torch::Tensor causalMask(int64_t length, const torch::TensorOptions& options) {
    return torch::full({length, length}, -std::numeric_limits<float>::infinity(), options).triu(1);
}

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(const TextEncoderConfig& c) : heads(c.numHeads), quickGELU(c.quickGELU) {
    self_attn = register_module("self_attn", std::make_shared<SelfAttention>());
    for (auto [name, member] :
         {std::pair{"q_proj", &SelfAttention::q_proj}, std::pair{"k_proj", &SelfAttention::k_proj},
          std::pair{"v_proj", &SelfAttention::v_proj}, std::pair{"out_proj", &SelfAttention::out_proj}}) {
        (*self_attn).*member = self_attn->register_module(name, torch::nn::Linear(c.hiddenSize, c.hiddenSize));
    }
    layer_norm1 = register_module("layer_norm1", layerNorm(c));
    mlp = register_module("mlp", std::make_shared<MLP>());
    mlp->fc1 = mlp->register_module("fc1", torch::nn::Linear(c.hiddenSize, c.intermediateSize));
    mlp->fc2 = mlp->register_module("fc2", torch::nn::Linear(c.intermediateSize, c.hiddenSize));
    layer_norm2 = register_module("layer_norm2", layerNorm(c));
}

torch::Tensor CLIPEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
    auto h = layer_norm1(x);
    auto attn = multiHeadAttention(withBranch(*self_attn->q_proj, h), withBranch(*self_attn->k_proj, h),
                                   withBranch(*self_attn->v_proj, h), heads, mask);
    auto y = x + withBranch(*self_attn->out_proj, attn);
    return y + withBranch(*mlp->fc2, activation(withBranch(*mlp->fc1, layer_norm2(y)), quickGELU));
}

CLIPTextModelImpl::CLIPTextModelImpl(TextEncoderConfig c) : config(std::move(c)) {
    text_model = register_module("text_model", std::make_shared<TextModel>());
    auto& tm = *text_model;
    tm.embeddings = tm.register_module("embeddings", std::make_shared<Embeddings>());
    tm.embeddings->token_embedding =
        tm.embeddings->register_module("token_embedding", torch::nn::Embedding(config.vocabSize, config.hiddenSize));
    tm.embeddings->position_embedding = tm.embeddings->register_module(
        "position_embedding", torch::nn::Embedding(config.maxPositions, config.hiddenSize));
    tm.embeddings->position_ids =
        tm.embeddings->register_buffer("position_ids", torch::arange(config.maxPositions, torch::kLong).unsqueeze(0));
    tm.encoder = tm.register_module("encoder", std::make_shared<Encoder>());
    tm.encoder->layers = tm.encoder->register_module("layers", torch::nn::ModuleList());
    for (int i = 0; i < config.numLayers; ++i) tm.encoder->layers->push_back(CLIPEncoderLayer(config));
    tm.final_layer_norm = tm.register_module("final_layer_norm", layerNorm(config));
}

torch::Tensor CLIPTextModelImpl::tokenEmbeds(const torch::Tensor& ids, const TokenEmbeddingOverride& override) {
    return applyTokenEmbeddingOverride(text_model->embeddings->token_embedding(ids.to(torch::kLong)), override);
}

torch::Tensor CLIPTextModelImpl::hiddenAfter(const torch::Tensor& ids, int layers,
                                             const TokenEmbeddingOverride& override) {
    auto& tm = *text_model;
    const auto length = ids.size(1);
    auto positions = tm.embeddings->position_ids.narrow(1, 0, length).to(torch::kLong);
    auto x = tokenEmbeds(ids, override) + tm.embeddings->position_embedding(positions);
    const auto mask = causalMask(length, x.options());
    for (int i = 0; i < layers; ++i)
        x = tm.encoder->layers[static_cast<std::size_t>(i)]->as<CLIPEncoderLayerImpl>()->forward(x, mask);
    return x;
}

TextEncoderOutput CLIPTextModelImpl::encode(const torch::Tensor& ids, int clipSkip) {
    return encodeWithOverride(ids, clipSkip, {});
}

TextEncoderOutput CLIPTextModelImpl::encodeWithOverride(const torch::Tensor& ids, int clipSkip,
                                                        const TokenEmbeddingOverride& override) {
    TextEncoderOutput out;
    out.hidden = hiddenAfter(ids, layersFor(config, clipSkip), override);
    if (config.normalizeHidden) out.hidden = text_model->final_layer_norm(out.hidden);
    out.pooled = pooledAtEos(out.hidden, ids);
    return out;
}

OpenCLIPResidualBlockImpl::OpenCLIPResidualBlockImpl(const TextEncoderConfig& c)
    : heads(c.numHeads), quickGELU(c.quickGELU) {
    ln_1 = register_module("ln_1", layerNorm(c));
    attn = register_module("attn", std::make_shared<Attention>());
    attn->in_proj_weight = attn->register_parameter(
        "in_proj_weight", torch::randn({3 * c.hiddenSize, c.hiddenSize}) * std::pow(c.hiddenSize, -0.5));
    attn->in_proj_bias = attn->register_parameter("in_proj_bias", torch::zeros({3 * c.hiddenSize}));
    attn->out_proj = attn->register_module("out_proj", torch::nn::Linear(c.hiddenSize, c.hiddenSize));
    ln_2 = register_module("ln_2", layerNorm(c));
    mlp = register_module("mlp", std::make_shared<MLP>());
    mlp->c_fc = mlp->register_module("c_fc", torch::nn::Linear(c.hiddenSize, c.intermediateSize));
    mlp->c_proj = mlp->register_module("c_proj", torch::nn::Linear(c.intermediateSize, c.hiddenSize));
}

torch::Tensor OpenCLIPResidualBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
    auto h = ln_1(x);
    auto qkv = torch::linear(h, attn->in_proj_weight, attn->in_proj_bias).chunk(3, -1);
    auto y = x + attn->out_proj(multiHeadAttention(qkv[0], qkv[1], qkv[2], heads, mask));
    return y + mlp->c_proj(activation(mlp->c_fc(ln_2(y)), quickGELU));
}

// Parameters without a torch::nn initialiser start as open_clip initialises them (normal, std 0.01
// for positions, width^-0.5 for projections), never as uninitialised memory: buildRandomModel and
// random-weight checkpoints use them as they are.
OpenCLIPTextModelImpl::OpenCLIPTextModelImpl(TextEncoderConfig c) : config(std::move(c)) {
    token_embedding = register_module("token_embedding", torch::nn::Embedding(config.vocabSize, config.hiddenSize));
    positional_embedding =
        register_parameter("positional_embedding", torch::randn({config.maxPositions, config.hiddenSize}) * 0.01);
    transformer = register_module("transformer", std::make_shared<Transformer>());
    transformer->resblocks = transformer->register_module("resblocks", torch::nn::ModuleList());
    for (int i = 0; i < config.numLayers; ++i) transformer->resblocks->push_back(OpenCLIPResidualBlock(config));
    ln_final = register_module("ln_final", layerNorm(config));
    if (config.projectionDim > 0) {
        text_projection =
            register_parameter("text_projection", torch::randn({config.hiddenSize, config.projectionDim}) *
                                                      std::pow(config.hiddenSize, -0.5));
    }
    logit_scale = register_parameter("logit_scale", torch::zeros({}));
}

torch::Tensor OpenCLIPTextModelImpl::encodeLayers(const torch::Tensor& ids, int layers,
                                                  const TokenEmbeddingOverride& override) {
    return ln_final(runLayers(ids, layers, override).front());
}

std::vector<torch::Tensor> OpenCLIPTextModelImpl::runLayers(const torch::Tensor& ids, int layers,
                                                            const TokenEmbeddingOverride& override, bool toEnd) {
    const auto length = ids.size(1);
    auto x = applyTokenEmbeddingOverride(token_embedding(ids.to(torch::kLong)), override) +
             positional_embedding.narrow(0, 0, length);
    const auto mask = causalMask(length, x.options());
    std::vector<torch::Tensor> out;
    const int last = toEnd ? config.numLayers : layers;
    for (int i = 0; i < last; ++i) {
        if (i == layers) out.push_back(x);
        x = transformer->resblocks[static_cast<std::size_t>(i)]->as<OpenCLIPResidualBlockImpl>()->forward(x, mask);
    }
    if (out.empty()) out.push_back(x);  // layers == last
    if (toEnd) out.push_back(x);
    return out;
}

TextEncoderOutput OpenCLIPTextModelImpl::encode(const torch::Tensor& ids, int clipSkip) {
    return encodeWithOverride(ids, clipSkip, {});
}

TextEncoderOutput OpenCLIPTextModelImpl::encodeWithOverride(const torch::Tensor& ids, int clipSkip,
                                                            const TokenEmbeddingOverride& override) {
    TextEncoderOutput out;
    if (config.projectedPooled && text_projection.defined()) {
        // SDXL: the conditioning is an inner layer, the pooled output needs every layer.
        const auto states = runLayers(ids, layersFor(config, clipSkip), override, /*toEnd=*/true);
        out.hidden = config.normalizeHidden ? ln_final(states[0]) : states[0];
        out.pooled = torch::matmul(pooledAtEos(ln_final(states[1]), ids), text_projection);
        return out;
    }
    const auto hidden = runLayers(ids, layersFor(config, clipSkip), override).front();
    out.hidden = config.normalizeHidden ? ln_final(hidden) : hidden;
    out.pooled = pooledAtEos(out.hidden, ids);
    return out;
}

torch::Tensor OpenCLIPTextModelImpl::textEmbeds(const torch::Tensor& ids) {
    auto hidden = encodeLayers(ids, config.numLayers);
    return torch::matmul(pooledAtEos(hidden, ids), text_projection);
}

}  // namespace easel::inference
