#include "inference/loading/model_detection.h"

#include <algorithm>

namespace easel::inference {
namespace {

constexpr const char* kSDXLTextPrefix = "conditioner.embedders.0.transformer.";
constexpr const char* kSDXLText2Prefix = "conditioner.embedders.1.model.";

class KeyReader {
public:
    KeyReader(const SafetensorsFile& file, std::string prefix) : m_file(file), m_prefix(std::move(prefix)) {}

    bool has(const std::string& key) const { return m_file.find(m_prefix + key) != nullptr; }

    const std::vector<std::int64_t>& shape(const std::string& key) const {
        const auto* view = m_file.find(m_prefix + key);
        if (view == nullptr) {
            throw ModelLoadError("'" + m_file.path().string() +
                                 "' is not a Stable Diffusion checkpoint Easel knows: tensor '" + m_prefix + key +
                                 "' is missing");
        }
        return view->shape;
    }

    int dim(const std::string& key, std::size_t index) const {
        const auto& s = shape(key);
        if (index >= s.size()) {
            throw ModelLoadError("tensor '" + m_prefix + key + "' has " + std::to_string(s.size()) +
                                 " dimensions, expected more than " + std::to_string(index));
        }
        return static_cast<int>(s[index]);
    }

    // Counts the consecutive indices N for which "<stem>N<suffix>" exists.
    int count(const std::string& stem, const std::string& suffix) const {
        int n = 0;
        while (hasAnyWithPrefix(stem + std::to_string(n) + suffix)) ++n;
        return n;
    }

    bool hasAnyWithPrefix(const std::string& keyPrefix) const {
        const std::string full = m_prefix + keyPrefix;
        return std::any_of(m_file.tensors().begin(), m_file.tensors().end(),
                           [&](const TensorView& t) { return t.name.rfind(full, 0) == 0; });
    }

private:
    const SafetensorsFile& m_file;
    std::string m_prefix;
};

UNetConfig detectUNet(const KeyReader& k) {
    UNetConfig c;
    c.modelChannels = k.dim("input_blocks.0.0.weight", 0);
    c.inChannels = k.dim("input_blocks.0.0.weight", 1);
    c.outChannels = k.dim("out.2.weight", 0);
    c.channelMult.clear();
    c.attentionLevels.clear();
    c.transformerDepth.clear();
    int level = 0;
    int resInLevel = 0;
    int levelChannels = 0;
    int levelDepth = 0;  // 0: no attention at this level
    auto closeLevel = [&] {
        c.channelMult.push_back(levelChannels / c.modelChannels);
        if (levelDepth > 0) c.attentionLevels.push_back(level);
        c.transformerDepth.push_back(levelDepth);
        if (level == 0) c.numResBlocks = resInLevel;
        ++level;
        resInLevel = 0;
        levelDepth = 0;
    };
    for (int i = 1; k.hasAnyWithPrefix("input_blocks." + std::to_string(i) + "."); ++i) {
        const std::string b = "input_blocks." + std::to_string(i) + ".";
        if (k.has(b + "0.op.weight")) {
            closeLevel();
            continue;
        }
        levelChannels = k.dim(b + "0.in_layers.2.weight", 0);
        if (levelChannels <= 0 || levelChannels % c.modelChannels != 0) {
            throw ModelLoadError("tensor '" + b + "0.in_layers.2.weight' has " + std::to_string(levelChannels) +
                                 " output channels, which is not a multiple of the UNet's " +
                                 std::to_string(c.modelChannels));
        }
        ++resInLevel;
        if (k.has(b + "1.proj_in.weight")) {
            c.linearProjection = k.shape(b + "1.proj_in.weight").size() == 2;
            c.contextDim = k.dim(b + "1.transformer_blocks.0.attn2.to_k.weight", 1);
            levelDepth = std::max(1, k.count(b + "1.transformer_blocks.", "."));
        }
    }
    closeLevel();
    if (k.has("middle_block.1.proj_in.weight")) {
        c.linearProjection = k.shape("middle_block.1.proj_in.weight").size() == 2;
        c.contextDim = k.dim("middle_block.1.transformer_blocks.0.attn2.to_k.weight", 1);
        c.middleTransformerDepth = std::max(1, k.count("middle_block.1.transformer_blocks.", "."));
    }
    // SDXL's vector conditioning: label_emb.0 = Linear(adm_in_channels, time_embed_dim), SiLU, Linear.
    if (k.has("label_emb.0.0.weight")) c.admInChannels = k.dim("label_emb.0.0.weight", 1);
    return c;
}

VAEConfig detectVAE(const KeyReader& k) {
    VAEConfig c;
    c.ch = k.dim("encoder.conv_in.weight", 0);
    c.inChannels = k.dim("encoder.conv_in.weight", 1);
    c.outChannels = k.dim("decoder.conv_out.weight", 0);
    const int levels = k.count("encoder.down.", ".");
    if (levels == 0) k.shape("encoder.down.0.block.0.conv1.weight");  // throws, naming the key
    c.numResBlocks = k.count("encoder.down.0.block.", ".");
    c.chMult.clear();
    for (int l = 0; l < levels; ++l) {
        const std::string last =
            "encoder.down." + std::to_string(l) + ".block." + std::to_string(c.numResBlocks - 1) + ".conv2.weight";
        c.chMult.push_back(k.dim(last, 0) / c.ch);
    }
    c.zChannels = k.dim("decoder.conv_in.weight", 1);
    c.embedDim = k.dim("post_quant_conv.weight", 1);
    return c;
}

TextEncoderConfig detectCLIP(const KeyReader& k) {
    TextEncoderConfig c;
    c.kind = TextEncoderKind::CLIP;
    c.vocabSize = k.dim("text_model.embeddings.token_embedding.weight", 0);
    c.hiddenSize = k.dim("text_model.embeddings.token_embedding.weight", 1);
    c.maxPositions = k.dim("text_model.embeddings.position_embedding.weight", 0);
    c.numLayers = k.count("text_model.encoder.layers.", ".");
    c.intermediateSize = k.dim("text_model.encoder.layers.0.mlp.fc1.weight", 0);
    c.numHeads = std::max(1, c.hiddenSize / 64);  // ViT-L/14: 768 / 64 = 12
    c.quickGELU = true;
    c.defaultSkippedLayers = 0;
    return c;
}

TextEncoderConfig detectOpenCLIP(const KeyReader& k) {
    TextEncoderConfig c;
    c.kind = TextEncoderKind::OpenCLIP;
    c.vocabSize = k.dim("token_embedding.weight", 0);
    c.hiddenSize = k.dim("token_embedding.weight", 1);
    c.maxPositions = k.dim("positional_embedding", 0);
    c.numLayers = k.count("transformer.resblocks.", ".");
    c.intermediateSize = k.dim("transformer.resblocks.0.mlp.c_fc.weight", 0);
    c.numHeads = std::max(1, c.hiddenSize / 64);  // ViT-H/14: 1024 / 64 = 16
    c.quickGELU = false;
    c.projectionDim = k.has("text_projection") ? k.dim("text_projection", 1) : 0;
    c.defaultSkippedLayers = 1;  // SD 2.x conditions on the penultimate layer
    return c;
}

}  // namespace

std::string DetectedModel::describe() const {
    std::string s = family == ModelFamily::SD1 ? "SD 1.x" : family == ModelFamily::SD2 ? "SD 2.x" : "SDXL";
    s += " (";
    if (inpainting) s += "inpainting, ";
    s += prediction == PredictionType::Epsilon ? "epsilon" : "v-prediction";
    return s + ")";
}

DetectedModel sdxlBaseGeometry() {
    DetectedModel m;
    m.family = ModelFamily::SDXL;
    m.textPrefix = kSDXLTextPrefix;
    m.text2Prefix = kSDXLText2Prefix;
    m.unet.modelChannels = 320;
    m.unet.channelMult = {1, 2, 4};
    m.unet.numResBlocks = 2;
    m.unet.attentionLevels = {1, 2};
    m.unet.transformerDepth = {0, 2, 10};
    m.unet.middleTransformerDepth = 10;
    m.unet.numHeadChannels = 64;
    m.unet.contextDim = 768 + 1280;
    m.unet.linearProjection = true;
    m.sizeEmbeddingDim = 256;
    m.unet.admInChannels = 1280 + 6 * m.sizeEmbeddingDim;  // 2816
    m.vae.scalingFactor = 0.13025f;
    m.text.defaultSkippedLayers = 1;  // CLIP ViT-L/14: the TextEncoderConfig defaults otherwise
    m.text.normalizeHidden = false;
    TextEncoderConfig bigG;
    bigG.kind = TextEncoderKind::OpenCLIP;
    bigG.hiddenSize = 1280;
    bigG.intermediateSize = 5120;
    bigG.numLayers = 32;
    bigG.numHeads = 20;
    bigG.quickGELU = false;
    bigG.projectionDim = 1280;
    bigG.defaultSkippedLayers = 1;
    bigG.normalizeHidden = false;
    bigG.projectedPooled = true;
    m.text2 = bigG;
    return m;
}

void applyOverrides(DetectedModel& m, const ModelOverrides& o) {
    if (o.unetNumHeadChannels) {
        m.unet.numHeadChannels = *o.unetNumHeadChannels;
    }
    if (o.unetNumHeads) {
        m.unet.numHeads = *o.unetNumHeads;
        if (!o.unetNumHeadChannels) m.unet.numHeadChannels = -1;
    }
    if (o.textNumHeads) m.text.numHeads = *o.textNumHeads;
    if (o.textQuickGELU) m.text.quickGELU = *o.textQuickGELU;
    if (o.text2NumHeads && m.text2) m.text2->numHeads = *o.text2NumHeads;
    if (o.text2QuickGELU && m.text2) m.text2->quickGELU = *o.text2QuickGELU;
    if (o.prediction) m.prediction = *o.prediction;
    if (o.vaeScalingFactor) m.vae.scalingFactor = *o.vaeScalingFactor;
}

namespace {

// sgm's SDXL layout: CLIP ViT-L (hidden_states[-2], no final LayerNorm) and OpenCLIP ViT-bigG
// (penultimate without ln_final, plus the projected pooled output) side by side in the context.
DetectedModel detectSDXL(const SafetensorsFile& file, const ModelOverrides& overrides) {
    DetectedModel m;
    m.family = ModelFamily::SDXL;
    m.textPrefix = kSDXLTextPrefix;
    m.text2Prefix = kSDXLText2Prefix;
    m.unet = detectUNet(KeyReader(file, m.unetPrefix));
    m.vae = detectVAE(KeyReader(file, m.vaePrefix));
    m.vae.scalingFactor = 0.13025f;  // sd_xl_base.yaml scale_factor
    m.text = detectCLIP(KeyReader(file, m.textPrefix));
    m.text.defaultSkippedLayers = 1;
    m.text.normalizeHidden = false;
    auto text2 = detectOpenCLIP(KeyReader(file, m.text2Prefix));
    text2.normalizeHidden = false;
    text2.projectedPooled = true;
    if (text2.projectionDim <= 0) KeyReader(file, m.text2Prefix).shape("text_projection");  // throws, naming it
    m.text2 = text2;
    m.inpainting = m.unet.inChannels == 9;
    m.unet.numHeadChannels = 64;  // sgm's SDXL configs fix num_head_channels at 64
    const int contextWidth = m.text.hiddenSize + text2.hiddenSize;
    if (m.unet.contextDim != contextWidth) {
        throw ModelLoadError("the UNet's cross-attention expects context width " + std::to_string(m.unet.contextDim) +
                             " but the two text encoders produce " + std::to_string(m.text.hiddenSize) + " + " +
                             std::to_string(text2.hiddenSize));
    }
    // vector = pooled ++ six sinusoidal embeddings (original size h, w; crop top, left; target h, w).
    const int sizePart = m.unet.admInChannels - text2.projectionDim;
    if (m.unet.admInChannels <= 0 || sizePart <= 0 || sizePart % 6 != 0 || (sizePart / 6) % 2 != 0) {
        throw ModelLoadError("label_emb takes " + std::to_string(m.unet.admInChannels) +
                             " inputs, which is not the pooled width " + std::to_string(text2.projectionDim) +
                             " plus six even-sized size embeddings");
    }
    m.sizeEmbeddingDim = sizePart / 6;
    applyOverrides(m, overrides);
    return m;
}

bool hasPrefix(const SafetensorsFile& file, const std::string& prefix) {
    return std::any_of(file.tensors().begin(), file.tensors().end(),
                       [&](const TensorView& t) { return t.name.rfind(prefix, 0) == 0; });
}

}  // namespace

DetectedModel detectSingleFile(const SafetensorsFile& file, const ModelOverrides& overrides) {
    if (file.find("model.diffusion_model.label_emb.0.0.weight") != nullptr && hasPrefix(file, kSDXLText2Prefix))
        return detectSDXL(file, overrides);
    DetectedModel m;
    const bool openClip = file.find("cond_stage_model.model.token_embedding.weight") != nullptr;
    m.family = openClip ? ModelFamily::SD2 : ModelFamily::SD1;
    m.textPrefix = openClip ? "cond_stage_model.model." : "cond_stage_model.transformer.";
    m.unet = detectUNet(KeyReader(file, m.unetPrefix));
    m.vae = detectVAE(KeyReader(file, m.vaePrefix));
    m.text = openClip ? detectOpenCLIP(KeyReader(file, m.textPrefix)) : detectCLIP(KeyReader(file, m.textPrefix));
    m.inpainting = m.unet.inChannels == 9;
    // SD 2.x: a fixed head dimension of 64 (num_head_channels); SD 1.x: 8 heads everywhere.
    if (m.family == ModelFamily::SD2 || m.unet.linearProjection) {
        m.unet.numHeadChannels = 64;
    } else {
        m.unet.numHeads = 8;
        m.unet.numHeadChannels = -1;
    }
    if (m.unet.contextDim != m.text.hiddenSize) {
        throw ModelLoadError("the UNet's cross-attention expects context width " + std::to_string(m.unet.contextDim) +
                             " but the text encoder produces " + std::to_string(m.text.hiddenSize));
    }
    // The 768-v SD 2.x models predict v; the weights cannot say so, so epsilon stays the default
    // unless a sidecar or the caller says otherwise.
    applyOverrides(m, overrides);
    return m;
}

}  // namespace easel::inference
