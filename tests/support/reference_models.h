#pragma once
// What the reference folder's weights cannot say, read from its JSON files: the model overrides for
// a checkpoint section of config.json, scheduler configs, and the pipeline section behind the
// pipeline vectors. Shared by the CPU and CUDA parity tests.

#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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

// A scheduler config in diffusers' scheduler_config.json spelling; absent keys take diffusers'
// defaults.
inline inference::SchedulerConfig schedulerConfigOf(const nlohmann::json& c) {
    inference::SchedulerConfig s;
    s.numTrainTimesteps = c.value("num_train_timesteps", 1000);
    s.betaStart = c.value("beta_start", 0.00085);
    s.betaEnd = c.value("beta_end", 0.012);
    s.scaledLinear = c.value("beta_schedule", std::string("scaled_linear")) == "scaled_linear";
    s.stepsOffset = c.value("steps_offset", 0);
    s.setAlphaToOne = c.value("set_alpha_to_one", false);
    s.prediction = c.value("prediction_type", std::string("epsilon")) == "v_prediction"
                       ? inference::PredictionType::VPrediction
                       : inference::PredictionType::Epsilon;
    const auto spacing = c.value("timestep_spacing", std::string());
    if (spacing == "linspace") s.spacing = inference::TimestepSpacing::Linspace;
    if (spacing == "leading") s.spacing = inference::TimestepSpacing::Leading;
    if (spacing == "trailing") s.spacing = inference::TimestepSpacing::Trailing;
    s.useKarrasSigmas = c.value("use_karras_sigmas", false);
    s.originalInferenceSteps = c.value("original_inference_steps", 50);
    s.timestepScaling = c.value("timestep_scaling", 10.0);
    s.algorithmType = c.value("algorithm_type", std::string());
    s.solverType = c.value("solver_type", std::string());
    s.solverOrder = c.value("solver_order", 2);
    s.lowerOrderFinal = c.value("lower_order_final", true);
    s.skipPrkSteps = c.value("skip_prk_steps", true);
    return s;
}

// The algorithm behind a diffusers class name, through Easel's own name table.
inline inference::SchedulerKind schedulerKindOf(const std::string& className) {
    return inference::parseSchedulerName(className).kind;
}

// Some JSON files store configs as Python reprs ('key': None, True); turn one into JSON.
inline nlohmann::json pythonReprJson(const nlohmann::json& v) {
    if (!v.is_string()) return v;
    std::string s = v.get<std::string>();
    for (auto& ch : s) {
        if (ch == '\'') ch = '"';
    }
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"None", "null"}, {"True", "true"}, {"False", "false"}}) {
        for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
            s.replace(pos, from.size(), to);
    }
    return nlohmann::json::parse(s);
}

// Resolves a "file.json: key" reference as config.json writes them.
inline nlohmann::json referenceJsonSection(const std::string& fileColonKey) {
    const auto colon = fileColonKey.find(':');
    if (colon == std::string::npos) throw std::runtime_error("expected 'file: key', got '" + fileColonKey + "'");
    auto trim = [](std::string t) {
        t.erase(0, t.find_first_not_of(' '));
        t.erase(t.find_last_not_of(' ') + 1);
        return t;
    };
    return referenceJson(trim(fileColonKey.substr(0, colon))).at(trim(fileColonKey.substr(colon + 1)));
}

// config.json's "pipeline" section: the scheduler (class, base config and options), step count and
// guidance behind pipeline_vectors.safetensors.
struct PipelineSpec {
    std::string schedulerClass;
    inference::SchedulerConfig schedulerConfig;
    int numInferenceSteps = 0;
    float guidanceScale = 0;
    std::vector<std::int64_t> latentShape;
    std::string file;

    std::unique_ptr<inference::Scheduler> makeScheduler() const {
        return inference::makeScheduler(schedulerKindOf(schedulerClass), schedulerConfig);
    }
};

inline PipelineSpec pipelineSpec() {
    const auto section = referenceConfig().at("pipeline");
    PipelineSpec spec;
    spec.schedulerClass = section.at("scheduler_class").get<std::string>();
    auto config = section.contains("scheduler_base_config")
                      ? referenceJsonSection(section["scheduler_base_config"].get<std::string>())
                      : nlohmann::json::object();
    config = pythonReprJson(config);
    const auto options = section.value("scheduler_options", nlohmann::json::object());
    for (const auto& [key, value] : options.items()) config[key] = value;
    spec.schedulerConfig = schedulerConfigOf(config);
    spec.numInferenceSteps = section.at("num_inference_steps").get<int>();
    spec.guidanceScale = section.at("guidance_scale").get<float>();
    spec.latentShape = section.value("latent_shape", std::vector<std::int64_t>{});
    spec.file = section.value("file", std::string("pipeline_vectors.safetensors"));
    return spec;
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
