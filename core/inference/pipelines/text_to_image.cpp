#include "inference/pipelines/text_to_image.h"

namespace easel::inference {

GenerationResult textToImage(const PipelineContext& ctx, const ResolvedRequest& r, const ProgressCallback& progress) {
    TaskLatents task;
    if (ctx.info.inpainting) repaintEverything(ctx, r, task);  // a 9-channel model needs its extra inputs
    return runPipeline(ctx, r, task, progress);
}

}  // namespace easel::inference
