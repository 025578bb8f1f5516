#include "training_benchmark.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include "bench_timing.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/models/unet_2d_condition.h"
#include "inference/tensor_utils.h"
#include "inference/training/fine_tune_step.h"

namespace easel::bench {

using namespace easel::inference;

int trainingBenchmark(const std::string& method, const std::string& precision, int rank, int size, int steps,
                      int threads, int checkpointing) {
    torch::set_num_threads(threads);
    const bool lora = method == "lora";
    if (!lora && method != "dreambooth") {
        std::fprintf(stderr, "--train is lora or dreambooth\n");
        return 2;
    }
    const int latent = size / 8;
    DetectedModel detected;  // the defaults are SD 1.5
    std::printf(
        "SD 1.5 geometry (random weights), %s training step, batch 1, %dx%d, %s, %d threads\n",
        lora ? ("LoRA rank " + std::to_string(rank)).c_str() : "DreamBooth (UNet + text encoder)", size, size,
        precision == "bf16" ? (lora ? "bf16 weights, fp32 LoRA factors" : "bf16 autocast over fp32 weights") : "fp32",
        threads);
    std::fflush(stdout);

    // 1. The training step, as fine_tuner.cpp runs it (the engine keeps the model channels-last).
    double stepSeconds = 0, trainRss = 0;
    std::size_t trainable = 0;
    {
        // A LoRA's frozen base in the compute precision; DreamBooth's fp32 master weights under autocast.
        const bool bf16 = precision == "bf16";
        auto model = buildRandomModel(detected, lora && bf16 ? torch::kBFloat16 : torch::kFloat32);
        useChannelsLast(*model.unet);
        training::StepSettings s;
        s.lora = lora;
        s.loraRank = rank;
        s.loraAlpha = rank;
        s.learningRate = lora ? 1e-4 : 2e-6;
        s.bf16Autocast = bf16 && !lora;
        s.gradientCheckpointing = checkpointing < 0 ? !lora : checkpointing == 1;  // the trainer's default
        training::FineTuneStepper stepper(model, s);
        trainable = stepper.trainableParameters();
        auto gen = torch::make_generator<torch::CPUGeneratorImpl>(1);
        const auto x0 = torch::randn({1, 4, latent, latent});
        const auto ids = torch::randint(0, 49407, {1, 77}, torch::kLong);
        stepSeconds = medianSeconds([&] { (void)stepper.step(x0, ids, 1, gen); }, steps);
        trainRss = peakRssGiB();
    }

    // 2. The same UNet's inference forward pass, batch 1, as the engine runs it in that precision.
    double forwardSeconds = 0;
    {
        torch::NoGradGuard noGrad;
        const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
        std::optional<UNet2DConditionModel> unet;
        {
            DefaultDtypeGuard guard(dtype);
            unet.emplace(detected.unet);
        }
        (*unet)->eval();
        useChannelsLast(**unet);
        const auto x = torch::randn({1, 4, latent, latent}).to(dtype);
        const auto t = torch::full({1}, 500.0f);
        const auto context = torch::randn({1, 77, detected.unet.contextDim}).to(dtype);
        forwardSeconds = medianSeconds([&] { (void)(*unet)->forward(x, t, context); }, steps);
    }
    std::printf("trainable parameters %.1f M; gradient checkpointing %s\n", static_cast<double>(trainable) / 1e6,
                (checkpointing < 0 ? !lora : checkpointing == 1) ? "on" : "off");
    std::printf("training step %.2f s; UNet forward (batch 1, inference) %.2f s; ratio %.2f x\n", stepSeconds,
                forwardSeconds, stepSeconds / forwardSeconds);
    std::printf("peak RSS during training %.2f GiB\n", trainRss);
    return 0;
}

}  // namespace easel::bench
