#include "inference/pipelines/image_to_image.h"

namespace easel::inference {

GenerationResult imageToImage(const PipelineContext& ctx, const ResolvedRequest& r, const ProgressCallback& progress) {
    const auto& req = r.request;
    if (!req.initImage) throw GenerationError("img2img needs an init image");
    TaskLatents task;
    task.initLatents = encodeLatents(ctx, imageToTensor(resizeImage(*req.initImage, r.width, r.height)));
    task.strength = req.strength;
    if (ctx.info.inpainting) repaintEverything(ctx, r, task);  // a 9-channel model without a mask
    return runPipeline(ctx, r, task, progress);
}

}  // namespace easel::inference
