#pragma once
// Text encoders for SD conditioning:
//  - CLIPTextModel in the transformers layout (SD 1.x, keys "text_model.*" after
//    "cond_stage_model.transformer."),
//  - OpenCLIPTextModel in the open_clip layout (SD 2.x, keys after "cond_stage_model.model.").
// Both apply a causal mask and no padding mask, as SD does.

#include <torch/torch.h>

#include <vector>

#include "inference/models/model_configs.h"

namespace easel::inference {

struct TextEncoderOutput {
    torch::Tensor hidden;  // [B, 77, D]: the conditioning the UNet sees (final LayerNorm applied unless
                           // the config's normalizeHidden is off, as for SDXL)
    torch::Tensor pooled;  // [B, D]: hidden at the first EOS (argmax of the ids); with projectedPooled,
                           // ln_final(last layer) there @ text_projection [B, projectionDim]
};

// Token-embedding rows replaced before the position embedding is added: textual inversion, as A1111's
// EmbeddingsWithFixes does it (and the same as transformers' inputs_embeds with those rows changed). In every
// sequence of the batch, position positions[k] takes vectors[k] instead of its token's row.
struct TokenEmbeddingOverride {
    torch::Tensor positions;  // [K] int64, within the sequence
    torch::Tensor vectors;    // [K, D]; cast to the encoder's dtype and device
    bool empty() const { return !positions.defined() || positions.numel() == 0; }
};

// The common interface the pipelines use.
class TextEncoder {
public:
    virtual ~TextEncoder() = default;
    // clipSkip in the A1111 sense: 1 = the model's own conditioning layer, 2 = one layer earlier, ...
    virtual TextEncoderOutput encode(const torch::Tensor& ids, int clipSkip) = 0;
    // The same with some token-embedding rows replaced (an empty override is plain encode). The pooled
    // output is still taken at argmax(ids), so placeholder ids must stay below EOS.
    virtual TextEncoderOutput encodeWithOverride(const torch::Tensor& ids, int clipSkip,
                                                 const TokenEmbeddingOverride& override) = 0;
    virtual const TextEncoderConfig& textConfig() const = 0;
    virtual torch::nn::Module& module() = 0;
};

struct CLIPEncoderLayerImpl : torch::nn::Module {
    explicit CLIPEncoderLayerImpl(const TextEncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

    struct SelfAttention : torch::nn::Module {
        torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
    };
    struct MLP : torch::nn::Module {
        torch::nn::Linear fc1{nullptr}, fc2{nullptr};
    };
    int heads;
    bool quickGELU;
    std::shared_ptr<SelfAttention> self_attn;
    std::shared_ptr<MLP> mlp;
    torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

struct CLIPTextModelImpl : torch::nn::Module, TextEncoder {
    explicit CLIPTextModelImpl(TextEncoderConfig config);
    TextEncoderOutput encode(const torch::Tensor& ids, int clipSkip) override;
    TextEncoderOutput encodeWithOverride(const torch::Tensor& ids, int clipSkip,
                                         const TokenEmbeddingOverride& override) override;
    const TextEncoderConfig& textConfig() const override { return config; }
    torch::nn::Module& module() override { return *this; }
    // Hidden states after `layers` encoder layers, before the final LayerNorm (layers = 0: embeddings).
    torch::Tensor hiddenAfter(const torch::Tensor& ids, int layers, const TokenEmbeddingOverride& override = {});
    // The token-embedding rows of `ids` [B, T] with the override applied, before the position embedding.
    torch::Tensor tokenEmbeds(const torch::Tensor& ids, const TokenEmbeddingOverride& override = {});

    TextEncoderConfig config;
    struct Embeddings : torch::nn::Module {
        torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
        torch::Tensor position_ids;
    };
    struct Encoder : torch::nn::Module {
        torch::nn::ModuleList layers{nullptr};
    };
    struct TextModel : torch::nn::Module {
        std::shared_ptr<Embeddings> embeddings;
        std::shared_ptr<Encoder> encoder;
        torch::nn::LayerNorm final_layer_norm{nullptr};
    };
    std::shared_ptr<TextModel> text_model;
};
TORCH_MODULE(CLIPTextModel);

struct OpenCLIPResidualBlockImpl : torch::nn::Module {
    explicit OpenCLIPResidualBlockImpl(const TextEncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

    struct Attention : torch::nn::Module {
        torch::Tensor in_proj_weight, in_proj_bias;
        torch::nn::Linear out_proj{nullptr};
    };
    struct MLP : torch::nn::Module {
        torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
    };
    int heads;
    bool quickGELU;
    torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
    std::shared_ptr<Attention> attn;
    std::shared_ptr<MLP> mlp;
};
TORCH_MODULE(OpenCLIPResidualBlock);

struct OpenCLIPTextModelImpl : torch::nn::Module, TextEncoder {
    explicit OpenCLIPTextModelImpl(TextEncoderConfig config);
    TextEncoderOutput encode(const torch::Tensor& ids, int clipSkip) override;
    TextEncoderOutput encodeWithOverride(const torch::Tensor& ids, int clipSkip,
                                         const TokenEmbeddingOverride& override) override;
    const TextEncoderConfig& textConfig() const override { return config; }
    torch::nn::Module& module() override { return *this; }
    // ln_final(output of the first `layers` resblocks).
    torch::Tensor encodeLayers(const torch::Tensor& ids, int layers, const TokenEmbeddingOverride& override = {});
    // open_clip encode_text: ln_final(all layers) at argmax(ids) @ text_projection.
    torch::Tensor textEmbeds(const torch::Tensor& ids);
    // The input of resblock `layers` (the output of the first `layers` resblocks), without ln_final;
    // with toEnd also the output of every resblock, as a second element.
    std::vector<torch::Tensor> runLayers(const torch::Tensor& ids, int layers,
                                         const TokenEmbeddingOverride& override = {}, bool toEnd = false);

    TextEncoderConfig config;
    torch::nn::Embedding token_embedding{nullptr};
    torch::Tensor positional_embedding, text_projection, logit_scale;
    struct Transformer : torch::nn::Module {
        torch::nn::ModuleList resblocks{nullptr};
    };
    std::shared_ptr<Transformer> transformer;
    torch::nn::LayerNorm ln_final{nullptr};
};
TORCH_MODULE(OpenCLIPTextModel);

// `embeds` [B, T, D] with the override's rows replaced in every sequence; throws std::invalid_argument for
// a vector of the wrong width or a position outside the sequence.
torch::Tensor applyTokenEmbeddingOverride(torch::Tensor embeds, const TokenEmbeddingOverride& override);

// Additive causal mask [T, T]: 0 on and below the diagonal, -inf above.
torch::Tensor causalMask(int64_t length, const torch::TensorOptions& options);

}  // namespace easel::inference
