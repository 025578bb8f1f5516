#pragma once
// txt2img: pure noise, denoised under the prompt's conditioning.

#include "inference/pipelines/pipeline.h"

namespace easel::inference {

GenerationResult textToImage(const PipelineContext& ctx, const ResolvedRequest& r, const ProgressCallback& progress);

}  // namespace easel::inference
