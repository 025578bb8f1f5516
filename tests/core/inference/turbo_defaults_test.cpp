// Few-step distilled models (SDXL-Turbo, SD-Turbo) say so in model.json: "turbo": true gives the
// defaults they are sampled with (1 step, no guidance, Euler a) on trailing timesteps, which for one
// step of 1000 training steps start at t = 999 (diffusers' timestep_spacing="trailing").

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "inference/engine.h"
#include "inference/loading/model_detection.h"
#include "inference/schedulers/scheduler.h"
#include "reference_model_folder.h"
#include "reference_sdxl_folder.h"

using namespace easel::inference;

namespace {

// The tiny reference model with `extra` merged into its model.json.
std::filesystem::path tinyModelWith(const easel::testing::TempDir& dir, const nlohmann::json& extra) {
    const auto folder = easel::testing::referenceModelFolder(dir, "Euler");
    auto sidecar = nlohmann::json::parse(std::ifstream(folder / "model.json"));
    sidecar.erase("default_steps");
    sidecar.erase("default_scheduler");
    sidecar.update(extra);
    std::ofstream(folder / "model.json") << sidecar.dump();
    return folder;
}

TEST(TurboModels, TrailingSpacingStartsOneStepAt999) {
    for (const auto kind : {SchedulerKind::Euler, SchedulerKind::EulerAncestral}) {
        SchedulerConfig config;
        config.spacing = TimestepSpacing::Trailing;
        auto scheduler = makeScheduler(kind, config);
        scheduler->setTimesteps(1);
        ASSERT_EQ(scheduler->timesteps().size(), 1u);
        EXPECT_FLOAT_EQ(scheduler->timesteps()[0], 999.0f);
        scheduler->setTimesteps(4);  // SDXL-Turbo's 4 steps: 999, 749, 499, 249
        EXPECT_EQ(scheduler->timesteps(), (std::vector<float>{999, 749, 499, 249}));
    }
}

TEST(TurboModels, TurboSidecarGivesOneStepNoGuidanceEulerAncestralTrailing) {
    easel::testing::TempDir turboDir;
    Engine turbo;
    turbo.loadModel(tinyModelWith(turboDir, {{"turbo", true}}));
    EXPECT_EQ(turbo.model().defaultSteps, 1);
    EXPECT_FLOAT_EQ(turbo.model().defaultGuidance, 0.0f);
    EXPECT_EQ(turbo.model().defaultScheduler, "Euler a");
    EXPECT_EQ(turbo.model().timestepSpacing, "trailing");

    // Explicit fields win over what "turbo" implies.
    easel::testing::TempDir fourDir;
    Engine four;
    four.loadModel(tinyModelWith(fourDir, {{"turbo", true}, {"default_steps", 4}, {"default_scheduler", "Euler"}}));
    EXPECT_EQ(four.model().defaultSteps, 4);
    EXPECT_EQ(four.model().defaultScheduler, "Euler");
    EXPECT_FLOAT_EQ(four.model().defaultGuidance, 0.0f);

    // The spacing reaches the sampler: the same one-step request on leading timesteps (t = 1) draws
    // another picture than on trailing ones (t = 999).
    easel::testing::TempDir leadingDir;
    Engine leading;
    leading.loadModel(tinyModelWith(leadingDir, {{"turbo", true}, {"timestep_spacing", "leading"}}));
    EXPECT_EQ(leading.model().timestepSpacing, "leading");
    GenerationRequest r;
    r.prompt = "a red circle";
    r.seed = 11;
    const auto a = turbo.generate(r);
    const auto b = leading.generate(r);
    ASSERT_EQ(a.images.size(), 1u);
    ASSERT_EQ(b.images.size(), 1u);
    EXPECT_NE(a.images[0].rgb, b.images[0].rgb);
    EXPECT_EQ(turbo.generate(r).images[0].rgb, a.images[0].rgb);  // and the trailing run reproduces

    // A spacing diffusers does not know is refused at load.
    easel::testing::TempDir badDir;
    Engine bad;
    EXPECT_THROW(bad.loadModel(tinyModelWith(badDir, {{"timestep_spacing", "sideways"}})), ModelLoadError);
}

// The tiny SDXL diffusers folder copied into `dir`, its scheduler config's timestep_spacing replaced
// by `spacing` (erased when null).
std::filesystem::path sdxlFolderWith(const easel::testing::TempDir& dir, const nlohmann::json& spacing) {
    const auto source = easel::testing::referenceFile(easel::testing::referenceSDXLSet() + "diffusers");
    const auto folder = dir.path() / "xl";
    std::filesystem::copy(source, folder, std::filesystem::copy_options::recursive);
    const auto schedulerFile = folder / "scheduler" / "scheduler_config.json";
    auto scheduler = nlohmann::json::parse(std::ifstream(schedulerFile));
    if (spacing.is_null()) {
        scheduler.erase("timestep_spacing");
    } else {
        scheduler["timestep_spacing"] = spacing;
    }
    std::ofstream(schedulerFile) << scheduler.dump();
    return folder;
}

// The folder has no tokenizer/ (its tiny encoders do not speak CLIP's vocabulary): the engine takes the
// CLIP vocabulary it is given, enough to load.
EngineOptions withClipVocabulary() {
    EngineOptions o;
    o.clipVocabulary = easel::testing::referenceSDXLVocabulary();
    return o;
}

}  // namespace

TEST(TurboModels, ADiffusersFolderSpacesTimestepsAsItsSchedulerConfigSays) {
    // The reference folder's own config (SDXL base's: "leading").
    const auto own = nlohmann::json::parse(std::ifstream(easel::testing::referenceFile(
        easel::testing::referenceSDXLSet() + "diffusers/scheduler/scheduler_config.json")));
    easel::testing::TempDir ownDir, trailingDir, noneDir, badDir;
    Engine asShipped(withClipVocabulary()), trailing(withClipVocabulary()), none(withClipVocabulary()),
        bad(withClipVocabulary());
    asShipped.loadModel(sdxlFolderWith(ownDir, own.value("timestep_spacing", nlohmann::json())));
    EXPECT_EQ(asShipped.model().timestepSpacing, own.value("timestep_spacing", std::string()));
    // An SDXL-Turbo folder says trailing (TrailingSpacingStartsOneStepAt999 shows what that does to a
    // step); without the key each scheduler keeps its own default; a spacing diffusers lacks is refused.
    trailing.loadModel(sdxlFolderWith(trailingDir, "trailing"));
    EXPECT_EQ(trailing.model().timestepSpacing, "trailing");
    none.loadModel(sdxlFolderWith(noneDir, nullptr));
    EXPECT_EQ(none.model().timestepSpacing, "");
    EXPECT_THROW(bad.loadModel(sdxlFolderWith(badDir, "sideways")), ModelLoadError);
}
