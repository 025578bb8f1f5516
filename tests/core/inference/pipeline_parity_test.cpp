// End-to-end txt2img parity (config.json's "pipeline" section and its vectors): CLIP conditioning,
// the CFG loop with the scheduler the section names, the VAE decode and the uint8 conversion, step
// by step and through denoise(). Nothing about the run is assumed: scheduler class, options, step
// count and guidance all come from the section.

#include <gtest/gtest.h>

#include "inference/loading/checkpoint_loader.h"
#include "inference/pipelines/denoising_loop.h"
#include "reference_models.h"

using namespace easel::inference;
using easel::testing::guidanceOf;
using easel::testing::parityTolerance;
using easel::testing::pipelineSpec;
using easel::testing::ReferenceVectors;

namespace {

StableDiffusionModel loadSd1() {
    const auto cfg = easel::testing::referenceConfig();
    ModelOverrides o;
    o.unetNumHeads = cfg["unet"]["params"]["num_heads"].get<int>();
    o.textNumHeads = cfg["text_encoder"]["config"]["num_attention_heads"].get<int>();
    o.vaeScalingFactor = cfg["vae"]["derived"]["pipeline_scale_factor"].get<float>();
    return loadSingleFileCheckpoint(easel::testing::referenceFile(cfg["checkpoint"]["file"].get<std::string>()), o);
}

std::string stepKey(int i, const char* name) { return "pipe.step" + std::to_string(i) + "." + name; }

// Stochastic samplers draw noise at each step; a set made with one stores the draws as
// pipe.step<i>.noise, and they are replayed in order.
NoiseSource storedNoise(const ReferenceVectors& v) {
    return [&v](const torch::Tensor& like, int stepIndex) {
        const auto key = stepKey(stepIndex, "noise");
        if (!v.has(key))
            throw std::runtime_error("the scheduler draws noise at step " + std::to_string(stepIndex) +
                                     " but the vectors hold no " + key);
        return v[key].to(like.options());
    };
}

}  // namespace

TEST(PipelineParity, TheSectionDescribesTheStoredRun) {
    const auto spec = pipelineSpec();
    ReferenceVectors v(spec.file);
    if (!spec.latentShape.empty()) {
        EXPECT_EQ(v["pipe.noise"].sizes(), torch::IntArrayRef(spec.latentShape));
    }
    auto scheduler = spec.makeScheduler();
    scheduler->setTimesteps(spec.numInferenceSteps);
    EXPECT_EQ(static_cast<std::int64_t>(scheduler->timesteps().size()), v["pipe.timesteps"].numel());
    // eps_cfg = u + g (c - u) recovers the guidance scale from the vectors themselves.
    EXPECT_NEAR(guidanceOf(v), spec.guidanceScale, 0.01f);
}

TEST(PipelineParity, Txt2ImgCfgStepByStep) {
    auto model = loadSd1();
    const auto spec = pipelineSpec();
    ReferenceVectors v(spec.file);
    torch::NoGradGuard noGrad;
    const auto ids = v["pipe.input_ids"];
    const auto context = model.textEncoder->encode(ids, 1).hidden;
    EXPECT_TENSOR_NEAR(context, v["pipe.context"], parityTolerance(v["pipe.context"]));

    auto scheduler = spec.makeScheduler();
    scheduler->setTimesteps(spec.numInferenceSteps);
    const auto refTimesteps = v["pipe.timesteps"];
    ASSERT_EQ(static_cast<std::int64_t>(scheduler->timesteps().size()), refTimesteps.numel());
    EXPECT_TENSOR_NEAR(torch::tensor(scheduler->timesteps()), refTimesteps, 1e-3);
    const float g = spec.guidanceScale;
    const auto noise = storedNoise(v);

    auto latents = v["pipe.noise"] * scheduler->initNoiseSigma();
    for (int i = 0; i < refTimesteps.numel(); ++i) {
        SCOPED_TRACE("step " + std::to_string(i));
        const auto modelInput = scheduler->scaleModelInput(torch::cat({latents, latents}), i);
        EXPECT_TENSOR_NEAR(modelInput, v[stepKey(i, "model_input")], parityTolerance(v[stepKey(i, "model_input")]));
        const auto t = torch::full({2}, scheduler->timesteps()[static_cast<std::size_t>(i)]);
        // Feed the stored input so that each step is judged on its own.
        auto eps = model.unet->forward(v[stepKey(i, "model_input")], t, v["pipe.context"]).chunk(2);
        EXPECT_TENSOR_NEAR(eps[0], v[stepKey(i, "eps_uncond")], parityTolerance(v[stepKey(i, "eps_uncond")]));
        EXPECT_TENSOR_NEAR(eps[1], v[stepKey(i, "eps_cond")], parityTolerance(v[stepKey(i, "eps_cond")]));
        const auto cfg = eps[0] + g * (eps[1] - eps[0]);
        // u + g (c - u) propagates the eps error with weight |1 - g| + g.
        EXPECT_TENSOR_NEAR(cfg, v[stepKey(i, "eps_cfg")],
                           (std::abs(1.0f - g) + g) * parityTolerance(v[stepKey(i, "eps_cond")]));
        latents = scheduler->step(v[stepKey(i, "eps_cfg")], i, latents, noise);
        EXPECT_TENSOR_NEAR(latents, v[stepKey(i, "latents")], parityTolerance(v[stepKey(i, "latents")], 2e-6) * 5.0);
        latents = v[stepKey(i, "latents")];
    }
    const auto decoded = model.vae->decode(latents / model.detected.vae.scalingFactor);
    EXPECT_TENSOR_NEAR(decoded, v["pipe.decoded"], parityTolerance(v["pipe.decoded"]));
    const auto image01 = (decoded / 2 + 0.5).clamp(0, 1);
    EXPECT_TENSOR_NEAR(image01, v["pipe.image_0_1"], 1e-5);
    const auto u8 = (image01 * 255).round().to(torch::kUInt8).permute({0, 2, 3, 1});
    EXPECT_LE(easel::testing::maxAbsDiff(u8, v["pipe.image_uint8_nhwc"]), 1.0);
}

TEST(PipelineParity, DenoiseLoopMatchesFinalLatents) {
    auto model = loadSd1();
    const auto spec = pipelineSpec();
    ReferenceVectors v(spec.file);
    auto scheduler = spec.makeScheduler();
    DenoiseInputs in;
    auto ctx = v["pipe.context"].chunk(2);
    in.uncond = ctx[0];
    in.cond = ctx[1];
    in.noise = v["pipe.noise"];
    in.guidanceScale = spec.guidanceScale;
    in.numInferenceSteps = spec.numInferenceSteps;
    in.ancestralNoise = storedNoise(v);
    int calls = 0;
    in.callback = [&](const StepProgress& p) {
        ++calls;
        EXPECT_EQ(p.total, in.numInferenceSteps);
        EXPECT_EQ(p.step, calls);
        return true;
    };
    const auto last = stepKey(static_cast<int>(v["pipe.timesteps"].numel()) - 1, "latents");
    const auto latents = denoise(model.unet, *scheduler, in);
    EXPECT_EQ(calls, in.numInferenceSteps);
    // Latents reach ~56 and float32 rounding over the loop moves them by ~2e-4 (README: the float64
    // pipeline differs from the float32 one by 2.1e-4), so judge them at 5e-5 relative.
    EXPECT_TENSOR_NEAR(latents, v[last], parityTolerance(v[last], 5e-5));
}

TEST(PipelineParity, CallbackCancels) {
    auto model = loadSd1();
    const auto spec = pipelineSpec();
    ReferenceVectors v(spec.file);
    auto scheduler = spec.makeScheduler();
    DenoiseInputs in;
    in.cond = v["pipe.context"].chunk(2)[1];
    in.noise = v["pipe.noise"];
    in.numInferenceSteps = 5;
    int calls = 0;
    in.callback = [&](const StepProgress&) { return ++calls < 2; };
    EXPECT_THROW(denoise(model.unet, *scheduler, in), GenerationCancelled);
    EXPECT_EQ(calls, 2);
}

TEST(Img2Img, StrengthPicksTheStartStep) {
    EXPECT_EQ(img2imgStartIndex(20, 1.0f), 0);
    EXPECT_EQ(img2imgStartIndex(20, 0.75f), 5);
    EXPECT_EQ(img2imgStartIndex(20, 0.3f), 14);
    EXPECT_EQ(img2imgStartIndex(20, 0.0f), 20);
}

TEST(Inpaint, BlendKeepsTheUnmaskedLatentsExactly) {
    auto model = loadSd1();
    ReferenceVectors v(pipelineSpec().file);
    auto scheduler = pipelineSpec().makeScheduler();
    DenoiseInputs in;
    in.cond = v["pipe.context"].chunk(2)[1];
    in.noise = v["pipe.noise"];
    in.numInferenceSteps = 4;
    auto gen = torch::make_generator<torch::CPUGeneratorImpl>(7);
    in.initLatents = torch::randn(in.noise.sizes(), gen);
    in.strength = 1.0f;
    in.mask = torch::zeros({1, 1, in.noise.size(2), in.noise.size(3)});
    in.mask.narrow(3, 0, in.noise.size(3) / 2).fill_(1.0f);  // repaint the left half
    const auto out = denoise(model.unet, *scheduler, in);
    const auto right = in.noise.size(3) - in.noise.size(3) / 2;
    EXPECT_TENSOR_NEAR(out.narrow(3, in.noise.size(3) / 2, right),
                       in.initLatents.narrow(3, in.noise.size(3) / 2, right), 0.0);
    EXPECT_GT(easel::testing::maxAbsDiff(out.narrow(3, 0, in.noise.size(3) / 2),
                                         in.initLatents.narrow(3, 0, in.noise.size(3) / 2)),
              0.1);
}
