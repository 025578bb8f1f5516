#include "inference/pipelines/inpaint.h"

namespace easel::inference {

GenerationResult inpaint(const PipelineContext& ctx, const ResolvedRequest& r, const ProgressCallback& progress) {
    const auto& req = r.request;
    if (!req.initImage || !req.mask) throw GenerationError("inpainting needs an init image and a mask");
    TaskLatents task;
    task.initPixels = imageToTensor(resizeImage(*req.initImage, r.width, r.height));
    task.initLatents = encodeLatents(ctx, task.initPixels);
    task.strength = req.strength;
    task.pureNoiseAtFullStrength = true;

    const auto maskImage = resizeImage(*req.mask, r.width, r.height);
    task.maskPixels = (imageToTensor(maskImage).mean(1, true) > 0.0).to(torch::kFloat32);  // white = repaint
    const int factor = ctx.model.detected.vae.downsampleFactor();
    task.mask = torch::nn::functional::interpolate(task.maskPixels,
                                                   torch::nn::functional::InterpolateFuncOptions()
                                                       .size(std::vector<int64_t>{r.height / factor, r.width / factor})
                                                       .mode(torch::kNearest))
                    .to(ctx.device);
    if (ctx.info.inpainting) {
        task.maskedImageLatents = encodeLatents(ctx, task.initPixels * (task.maskPixels < 0.5).to(torch::kFloat32));
    }
    return runPipeline(ctx, r, task, progress);
}

}  // namespace easel::inference
