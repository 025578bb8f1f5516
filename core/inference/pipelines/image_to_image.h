#pragma once
// img2img: the init image, resized to the output size, is encoded, noised to the level `strength`
// asks for (diffusers get_timesteps: strength 0.75 of 20 steps starts at step 5) and denoised from
// there. Even strength 1 keeps a trace of it, as in diffusers.

#include "inference/pipelines/pipeline.h"

namespace easel::inference {

GenerationResult imageToImage(const PipelineContext& ctx, const ResolvedRequest& r, const ProgressCallback& progress);

}  // namespace easel::inference
