// A model folder's model.json defaults, on the reference checkpoint: a request that names no
// scheduler runs the model's default_scheduler, reports it, and writes it into the PNG parameters;
// an unknown default_scheduler is refused when the model loads, not at the first request; and the
// per-step previews.

#include <gtest/gtest.h>

#include "inference/engine.h"
#include "inference/loading/model_detection.h"
#include "inference/runtime_info.h"
#include "reference_model_folder.h"

using namespace easel::inference;
using easel::testing::referenceModelFolder;

namespace {

GenerationRequest request(const std::string& scheduler) {
    GenerationRequest r;
    r.prompt = "a red circle";
    r.seed = 11;
    r.scheduler = scheduler;
    return r;
}

TEST(EngineDefaults, RequestWithoutSchedulerRunsTheModelsDefault) {
    easel::testing::TempDir dir;
    Engine engine;
    engine.loadModel(referenceModelFolder(dir, "DDIM"));
    EXPECT_EQ(engine.model().defaultScheduler, "DDIM");

    const auto byDefault = engine.generate(request(""));
    EXPECT_EQ(byDefault.scheduler, "DDIM");
    ASSERT_EQ(byDefault.infotexts.size(), 1u);
    EXPECT_NE(byDefault.infotexts[0].find("Sampler: DDIM,"), std::string::npos) << byDefault.infotexts[0];

    // The same pixels as naming it, and not those of another scheduler.
    const auto named = engine.generate(request("DDIM"));
    EXPECT_EQ(named.scheduler, "DDIM");
    EXPECT_EQ(byDefault.images[0].rgb, named.images[0].rgb);
    const auto euler = engine.generate(request("Euler"));
    EXPECT_EQ(euler.scheduler, "Euler");
    EXPECT_NE(byDefault.images[0].rgb, euler.images[0].rgb);
}

// Previews: small latents are decoded by the VAE (the output's size); larger SD latents go through the
// linear latent-to-RGB map (the latents' size), so a big image costs no decode per step.
TEST(EngineDefaults, PreviewsAreDecodedForSmallLatentsAndMappedForLargeOnes) {
    easel::testing::TempDir dir;
    Engine engine;
    engine.loadModel(referenceModelFolder(dir, "DDIM"));
    const int f = engine.model().sizeMultiple;
    for (const int latentSide : {4, 40}) {
        auto r = request("");
        r.width = r.height = latentSide * f;
        r.previewEvery = 1;
        std::vector<std::pair<int, int>> sizes;
        std::vector<double> means;
        engine.generate(r, [&](const GenerationProgress& g) {
            if (g.preview != nullptr) {
                sizes.emplace_back(g.preview->width, g.preview->height);
                double sum = 0;
                for (const auto v : g.preview->rgb) sum += v;
                means.push_back(sum / static_cast<double>(g.preview->rgb.size()));
                EXPECT_EQ(g.preview->rgb.size(), static_cast<std::size_t>(g.preview->width * g.preview->height * 3));
            }
            return true;
        });
        ASSERT_EQ(sizes.size(), 3u) << "one preview per step at side " << latentSide;  // default_steps
        const int expected = latentSide * latentSide <= 32 * 32 ? latentSide * f : latentSide;
        for (const auto& [w, h] : sizes) {
            EXPECT_EQ(w, expected);
            EXPECT_EQ(h, expected);
        }
        for (const double m : means) EXPECT_TRUE(m > 0.0 && m < 255.0) << m;  // not a blank frame
    }
}

TEST(EngineDefaults, UnknownDefaultSchedulerIsRefusedAtLoad) {
    easel::testing::TempDir dir;
    Engine engine;
    try {
        engine.loadModel(referenceModelFolder(dir, "Warp Drive 3000"));
        FAIL() << "loaded a model whose default scheduler does not exist";
    } catch (const ModelLoadError& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("default_scheduler"), std::string::npos) << message;
        EXPECT_NE(message.find("Warp Drive 3000"), std::string::npos) << message;
    }
}

}  // namespace

// bf16 on a CPU without AVX-512 takes libtorch 1.13's single-threaded matmul path (minutes per SD 1.5
// step): the engine runs fp32 there unless told to keep bf16.
TEST(EnginePrecision, Bf16OnACpuWithoutFastBf16RunsFp32UnlessForced) {
    EXPECT_EQ(effectivePrecision("bf16", false, false, false), "fp32");
    EXPECT_EQ(effectivePrecision("bf16", false, false, true), "bf16");
    EXPECT_EQ(effectivePrecision("bf16", false, true, false), "bf16");
    EXPECT_EQ(effectivePrecision("bf16", true, false, false), "bf16");  // CUDA has its own bf16
    EXPECT_EQ(effectivePrecision("fp32", false, false, false), "fp32");
    EXPECT_EQ(effectivePrecision("fp16", true, false, false), "fp16");
}
