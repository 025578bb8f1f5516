#pragma once
// Hyper-parameters of the three Stable Diffusion networks, in the original (LDM / CLIP) vocabulary.
// Torch-free, so that detection and the service layer can pass them around.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace easel::inference {

struct UNetConfig {
    int inChannels = 4;  // 9 for inpainting models
    int outChannels = 4;
    int modelChannels = 320;
    std::vector<int> channelMult{1, 2, 4, 4};
    int numResBlocks = 2;
    // Levels (indices into channelMult) that carry a SpatialTransformer; LDM's attention_resolutions
    // are downsample rates 1, 2, 4, ... which map to levels 0, 1, 2, ...
    std::vector<int> attentionLevels{0, 1, 2};
    int numHeads = 8;          // used when numHeadChannels <= 0 (SD 1.x)
    int numHeadChannels = -1;  // fixed head dimension (SD 2.x, SDXL: 64)
    // BasicTransformerBlocks per SpatialTransformer, per level (read only for levels with attention;
    // a level past the end takes 1). SD 1.x/2.x: 1 everywhere; SDXL base: [1, 2, 10].
    std::vector<int> transformerDepth{1, 1, 1, 1};
    int middleTransformerDepth = 1;  // the middle block's (sgm: transformer_depth[-1])
    int contextDim = 768;
    bool linearProjection = false;  // SD 2.x, SDXL: proj_in/proj_out are Linear, else Conv 1x1
    // Width of the `vector` conditioning that label_emb (Linear, SiLU, Linear) adds to the time
    // embedding (sgm num_classes="sequential", adm_in_channels); 0: no label_emb (SD 1.x/2.x).
    int admInChannels = 0;

    int timeEmbedDim() const { return modelChannels * 4; }
    int headsFor(int channels) const { return numHeadChannels > 0 ? channels / numHeadChannels : numHeads; }
    int depthAt(int level) const {
        return level >= 0 && level < static_cast<int>(transformerDepth.size())
                   ? transformerDepth[static_cast<std::size_t>(level)]
                   : 1;
    }
};

struct VAEConfig {
    int inChannels = 3;
    int outChannels = 3;
    int ch = 128;
    std::vector<int> chMult{1, 2, 4, 4};
    int numResBlocks = 2;
    int zChannels = 4;
    int embedDim = 4;
    float scalingFactor = 0.18215f;
    int downsampleFactor() const { return 1 << (static_cast<int>(chMult.size()) - 1); }
};

enum class TextEncoderKind { CLIP, OpenCLIP };

struct TextEncoderConfig {
    TextEncoderKind kind = TextEncoderKind::CLIP;
    int vocabSize = 49408;
    int hiddenSize = 768;
    int intermediateSize = 3072;
    int numLayers = 12;
    int numHeads = 12;
    int maxPositions = 77;
    bool quickGELU = true;  // CLIP ViT-L: quick_gelu; OpenCLIP ViT-H: exact GELU
    float layerNormEps = 1e-5f;
    int projectionDim = 0;  // OpenCLIP text_projection width (unused by SD 1.x/2.x)
    // Layers counted from the end that SD skips by default: 0 for SD 1.x ("last"),
    // 1 for SD 2.x and both SDXL encoders ("penultimate").
    int defaultSkippedLayers = 0;
    // The final LayerNorm on the conditioning hidden states: SD 1.x/2.x apply it, SDXL does not
    // (sgm FrozenCLIPEmbedder layer="hidden", FrozenOpenCLIPEmbedder2 legacy=False).
    bool normalizeHidden = true;
    // pooled = ln_final(output of every layer)[first EOS] @ text_projection (SDXL's encoder 2, the
    // start of its `vector`), rather than the conditioning hidden state at the first EOS.
    bool projectedPooled = false;
};

enum class PredictionType { Epsilon, VPrediction };

}  // namespace easel::inference
