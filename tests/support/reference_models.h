#pragma once
// What the reference folder's weights cannot say, read from its JSON files: the model overrides for
// a checkpoint section of config.json, the SD 1.5 scheduler config, and the guidance scale of the
// pipeline vectors. Shared by the CPU and CUDA parity tests.

#include <cmath>
#include <string>

#include "inference/loading/checkpoint_loader.h"
#include "inference/schedulers/scheduler.h"
#include "reference_vectors.h"

namespace easel::testing {

// Head counts and activation for one checkpoint section (config.json's root, "sd2", "inpainting")
// and the text-encoder section that goes with it.
inline inference::ModelOverrides overridesFor(const nlohmann::json& section, const nlohmann::json& textSection) {
    inference::ModelOverrides o;
    const auto& p = section.at("unet").at("params");
    const int headChannels = p.value("num_head_channels", -1);
    if (headChannels > 0) {
        o.unetNumHeadChannels = headChannels;
    } else {
        o.unetNumHeads = p.at("num_heads").get<int>();
    }
    if (textSection.contains("config")) {
        o.textNumHeads = textSection["config"].at("num_attention_heads").get<int>();
        o.textQuickGELU = textSection["config"].at("hidden_act").get<std::string>() == "quick_gelu";
    } else if (textSection.contains("open_clip_text_cfg")) {
        o.textNumHeads = textSection["open_clip_text_cfg"].at("heads").get<int>();
        o.textQuickGELU = textSection.value("quick_gelu", false);
    }
    return o;
}

inline inference::SchedulerConfig sd15SchedulerConfig() {
    const auto base = referenceJson("scheduler_reference.json")["sd15_base_config"];
    inference::SchedulerConfig c;
    c.numTrainTimesteps = base["num_train_timesteps"].get<int>();
    c.betaStart = base["beta_start"].get<double>();
    c.betaEnd = base["beta_end"].get<double>();
    c.stepsOffset = base["steps_offset"].get<int>();
    return c;
}

// The guidance scale is not stored; recover it from eps_cfg = u + g (c - u) by least squares.
inline float guidanceOf(const ReferenceVectors& v) {
    const auto u = v["pipe.step0.eps_uncond"].to(torch::kFloat64);
    const auto d = v["pipe.step0.eps_cond"].to(torch::kFloat64) - u;
    const auto r = v["pipe.step0.eps_cfg"].to(torch::kFloat64) - u;
    const double g = (d * r).sum().item<double>() / (d * d).sum().item<double>();
    return static_cast<float>(std::round(g * 100.0) / 100.0);  // guidance scales are entered to 2 decimals
}

}  // namespace easel::testing
