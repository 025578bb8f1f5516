#pragma once
// Inpainting: white mask pixels (brighter than mid grey) are repainted. A 9-channel inpainting
// model gets the mask and the masked image's latents as extra UNet inputs; an ordinary model gets
// the noised original re-imposed outside the mask after every step (the denoising loop does that).
// At strength 1 the masked area starts from pure noise. Outside the mask the result is the caller's
// own pixels.

#include "inference/pipelines/pipeline.h"

namespace easel::inference {

GenerationResult inpaint(const PipelineContext& ctx, const ResolvedRequest& r, const ProgressCallback& progress);

}  // namespace easel::inference
