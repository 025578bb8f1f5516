#include "inference/pipelines/sdxl_conditioning.h"

#include <stdexcept>

#include "inference/models/unet_2d_condition.h"

namespace easel::inference {

torch::Tensor sizePairEmbedding(const torch::Tensor& pairs, int dim) {
    if (pairs.dim() != 2) throw std::invalid_argument("size conditioning: expected [B, n] pairs");
    const auto batch = pairs.size(0);
    // sgm: timestep_embedding(rearrange(x, "b d -> (b d)"), outdim) then "(b d) d2 -> b (d d2)".
    return timestepEmbedding(pairs.reshape({-1}).to(torch::kFloat32), dim).reshape({batch, -1});
}

torch::Tensor sdxlVector(const torch::Tensor& pooled, const torch::Tensor& originalSize, const torch::Tensor& crop,
                         const torch::Tensor& targetSize, int dim) {
    const auto device = pooled.device();
    return torch::cat({pooled.to(torch::kFloat32), sizePairEmbedding(originalSize.to(device), dim),
                       sizePairEmbedding(crop.to(device), dim), sizePairEmbedding(targetSize.to(device), dim)},
                      1);
}

torch::Tensor sdxlVector(const torch::Tensor& pooled, const SizeConditioning& s, int dim) {
    const auto batch = pooled.size(0);
    auto pair = [&](int a, int b) {
        return torch::tensor({static_cast<float>(a), static_cast<float>(b)}, torch::kFloat32)
            .unsqueeze(0)
            .expand({batch, 2});
    };
    return sdxlVector(pooled, pair(s.originalHeight, s.originalWidth), pair(s.cropTop, s.cropLeft),
                      pair(s.targetHeight, s.targetWidth), dim);
}

torch::Tensor openClipPadding(const torch::Tensor& ids, std::int64_t eosId) {
    const auto isEos = ids == eosId;
    const auto first = isEos.to(torch::kLong).argmax(-1, /*keepdim=*/true);  // the first maximum
    const auto positions = torch::arange(ids.size(1), ids.options().dtype(torch::kLong)).unsqueeze(0);
    return ids.masked_fill((positions > first).logical_and(isEos.any(-1, /*keepdim=*/true)), 0);
}

SDXLTextConditioning encodeSDXLText(StableDiffusionModel& model, const torch::Tensor& ids1, const torch::Tensor& ids2,
                                    int clipSkip, const TokenEmbeddingOverride& override1,
                                    const TokenEmbeddingOverride& override2) {
    if (!model.textEncoder2) throw std::invalid_argument("encodeSDXLText needs an SDXL model (two text encoders)");
    const auto first = model.textEncoder->encodeWithOverride(ids1, clipSkip, override1);
    const auto second = model.textEncoder2->encodeWithOverride(ids2, clipSkip, override2);
    return {torch::cat({first.hidden, second.hidden.to(first.hidden.scalar_type())}, -1), second.pooled};
}

}  // namespace easel::inference
