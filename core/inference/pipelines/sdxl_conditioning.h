#pragma once
// What SDXL adds to the SD conditioning (Stability-AI generative-models, sgm GeneralConditioner on
// sd_xl_base.yaml): the context is two text encoders side by side, CLIP ViT-L's hidden_states[-2]
// then OpenCLIP ViT-bigG's penultimate layer, both without their final LayerNorm; the UNet also
// gets a `vector` = bigG's pooled projection ++ sinusoidal embeddings of the original size (h, w),
// the crop's top-left corner (top, left) and the target size (h, w). Used by every pipeline when the
// model is SDXL, and by the parity tests.

#include <torch/torch.h>

#include <cstdint>

#include "common/size_conditioning.h"
#include "inference/loading/checkpoint_loader.h"

namespace easel::inference {

// An uncropped image of this size: sgm's original_size_as_tuple, crop_coords_top_left and
// target_size_as_tuple as the SDXL pipelines default to.
inline SizeConditioning sdxlImageSizes(int width, int height) {
    return {.originalWidth = width, .originalHeight = height, .targetWidth = width, .targetHeight = height};
}

// ConcatTimestepEmbedderND: pairs [B, 2] -> [B, 2 * dim], each number embedded on its own with the
// UNet's sinusoidal timestep embedding (cos first, float32) and the two concatenated in order.
torch::Tensor sizePairEmbedding(const torch::Tensor& pairs, int dim);

// pooled [B, P] ++ emb(original) ++ emb(crop) ++ emb(target): [B, P + 6 * dim] float32.
torch::Tensor sdxlVector(const torch::Tensor& pooled, const torch::Tensor& originalSize, const torch::Tensor& crop,
                         const torch::Tensor& targetSize, int dim);
// `sizes` in pixels, every field as used (a 0 is a 0, not "the image's").
torch::Tensor sdxlVector(const torch::Tensor& pooled, const SizeConditioning& sizes, int dim);

// open_clip.tokenize pads with 0 where the CLIP tokenizer pads with EOS: `ids` [B, T] with every
// position after the first `eosId` set to 0 (rows without one are left alone).
torch::Tensor openClipPadding(const torch::Tensor& ids, std::int64_t eosId);

struct SDXLTextConditioning {
    torch::Tensor context;  // [B, T, D1 + D2]: encoder 1 then encoder 2
    torch::Tensor pooled;   // [B, P]: encoder 2's projected pooled output
};

// Both encoders on one chunk of ids: `ids1` as the CLIP tokenizer pads (EOS), `ids2` as open_clip
// does (0). clipSkip in the A1111 sense, counted from each encoder's default (penultimate) layer.
// override1 / override2: textual-inversion vectors for each encoder's token embeddings (SDXL clip_l / clip_g).
SDXLTextConditioning encodeSDXLText(StableDiffusionModel& model, const torch::Tensor& ids1, const torch::Tensor& ids2,
                                    int clipSkip, const TokenEmbeddingOverride& override1 = {},
                                    const TokenEmbeddingOverride& override2 = {});

}  // namespace easel::inference
