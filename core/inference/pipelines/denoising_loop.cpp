#include "inference/pipelines/denoising_loop.h"

#include <algorithm>
#include <cmath>

namespace easel::inference {

int img2imgStartIndex(int steps, float strength) {
    const int initTimestep = std::min(static_cast<int>(static_cast<float>(steps) * strength), steps);
    return std::max(steps - initTimestep, 0);
}

torch::Tensor denoise(UNet2DConditionModel& unet, Scheduler& scheduler, const DenoiseInputs& in) {
    torch::NoGradGuard noGrad;
    const auto start = std::chrono::steady_clock::now();
    scheduler.setTimesteps(in.numInferenceSteps);
    const bool img2img = in.initLatents.defined();
    const int first = img2img ? img2imgStartIndex(in.numInferenceSteps, in.strength) * scheduler.order() : 0;
    const int total = static_cast<int>(scheduler.timesteps().size());
    if (first >= total) return in.initLatents.to(torch::kFloat32);  // strength 0: nothing to do

    const bool fromNoise = !img2img || (in.pureNoiseAtFullStrength && in.strength >= 1.0f);
    torch::Tensor latents = fromNoise ? in.noise * scheduler.initNoiseSigma()
                                      : scheduler.addNoise(in.initLatents.to(torch::kFloat32), in.noise, first);
    const bool guided = in.guidanceScale > 1.0f && in.uncond.defined();
    const auto context = guided ? torch::cat({in.uncond, in.cond}, 0) : in.cond;
    torch::Tensor y;  // SDXL
    if (in.condY.defined()) y = guided ? torch::cat({in.uncondY, in.condY}, 0) : in.condY;
    const auto modelDtype = unet->time_embed->ptr<torch::nn::LinearImpl>(0)->weight.scalar_type();
    const bool nineChannel = unet->config.inChannels == 9;
    const bool blendMask = in.mask.defined() && !nineChannel;

    NoiseSource ancestral = in.ancestralNoise;
    if (!ancestral) {
        ancestral = [](const torch::Tensor& like, int) { return torch::randn_like(like); };
    }

    for (int i = first; i < total; ++i) {
        auto modelInput = scheduler.scaleModelInput(latents, i);
        if (nineChannel) modelInput = torch::cat({modelInput, in.mask, in.maskedImageLatents}, 1);
        if (guided) modelInput = torch::cat({modelInput, modelInput}, 0);
        const auto t = torch::full({modelInput.size(0)}, scheduler.timesteps()[static_cast<std::size_t>(i)],
                                   torch::TensorOptions().dtype(torch::kFloat32).device(latents.device()));
        auto out =
            unet->forward(modelInput.to(modelDtype), t, context.to(modelDtype), y.defined() ? y.to(modelDtype) : y)
                .to(torch::kFloat32);
        if (guided) {
            auto parts = out.chunk(2, 0);
            out = parts[0] + in.guidanceScale * (parts[1] - parts[0]);
        }
        latents = scheduler.step(out, i, latents, ancestral);
        if (blendMask) {
            // Keep the original outside the mask, noised to the level of the next step.
            const auto keep = i + 1 < total ? scheduler.addNoise(in.initLatents.to(torch::kFloat32), in.noise, i + 1)
                                            : in.initLatents.to(torch::kFloat32);
            latents = (1.0f - in.mask) * keep + in.mask * latents;
        }
        if (in.callback) {
            StepProgress p;
            p.step = i - first + 1;
            p.total = total - first;
            p.elapsedSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const auto& x0 = scheduler.lastPredictedOriginal();
            p.predictedLatents = x0.defined() ? &x0 : nullptr;
            if (!in.callback(p)) throw GenerationCancelled();
        }
    }
    return latents;
}

}  // namespace easel::inference
