// Scheduler parity with diffusers, from scheduler_reference.json / sd2_scheduler_reference.json and
// their tensors: every schedule (timesteps, sigmas, init_noise_sigma) and every trajectory of the
// fake denoiser F(x_in, t) = A x_in + B cos(W t), with the stored noise substituted for the RNG.

#include <gtest/gtest.h>

#include "inference/schedulers/scheduler.h"
#include "reference_models.h"

using namespace easel::inference;
using easel::testing::pythonReprJson;
using easel::testing::ReferenceVectors;
using easel::testing::schedulerConfigOf;
using easel::testing::schedulerKindOf;

namespace {

std::vector<double> parseList(const nlohmann::json& v) {
    // The schedules section stores lists as JSON strings of Python lists.
    const auto parsed = v.is_string() ? nlohmann::json::parse(v.get<std::string>()) : v;
    return parsed.get<std::vector<double>>();
}

void checkSchedules(const std::string& jsonName, const std::string& tensorName) {
    const auto ref = easel::testing::referenceJson(jsonName);
    ReferenceVectors v(tensorName);
    int checked = 0;
    for (const auto& [name, entry] : ref["schedules"].items()) {
        SCOPED_TRACE(jsonName + " " + name);
        auto scheduler = makeScheduler(schedulerKindOf(entry["scheduler_class"]),
                                       schedulerConfigOf(pythonReprJson(entry["config"])));
        const int n =
            std::stoi(entry["num_inference_steps"].is_string() ? entry["num_inference_steps"].get<std::string>()
                                                               : entry["num_inference_steps"].dump());
        scheduler->setTimesteps(n);
        const auto timesteps = parseList(entry["timesteps"]);
        ASSERT_EQ(scheduler->timesteps().size(), timesteps.size());
        for (std::size_t i = 0; i < timesteps.size(); ++i)
            EXPECT_NEAR(scheduler->timesteps()[i], timesteps[i], 1e-3) << i;
        if (entry.contains("sigmas") && !entry["sigmas"].is_null()) {
            const auto sigmas = parseList(entry["sigmas"]);
            ASSERT_EQ(scheduler->sigmas().size(), sigmas.size());
            for (std::size_t i = 0; i < sigmas.size(); ++i)
                EXPECT_NEAR(scheduler->sigmas()[i], sigmas[i], 2e-6 * std::max(1.0, sigmas[i])) << i;
        }
        const double initSigma =
            std::stod(entry["init_noise_sigma"].is_string() ? entry["init_noise_sigma"].get<std::string>()
                                                            : entry["init_noise_sigma"].dump());
        EXPECT_NEAR(scheduler->initNoiseSigma(), initSigma, 1e-5 * std::max(1.0, initSigma));
        if (v.has("alphas_cumprod")) EXPECT_TENSOR_NEAR(scheduler->alphasCumprod(), v["alphas_cumprod"], 0.0);
        ++checked;
    }
    EXPECT_GT(checked, 0);
}

void checkTrajectories(const std::string& jsonName, const std::string& tensorName) {
    const auto ref = easel::testing::referenceJson(jsonName);
    ReferenceVectors v(tensorName);
    const auto& fake = ref["fake_denoiser"];
    const float A = fake["A"].get<float>(), B = fake["B"].get<float>(), W = fake["W"].get<float>();
    int checked = 0;
    for (const auto& [name, entry] : ref["trajectories"].items()) {
        SCOPED_TRACE(jsonName + " trajectory " + name);
        auto scheduler = makeScheduler(schedulerKindOf(entry["scheduler_class"]),
                                       schedulerConfigOf(pythonReprJson(entry["config"])));
        scheduler->setTimesteps(entry["num_inference_steps"].get<int>());
        const std::string p = "traj." + name + ".";
        auto x = v[p + "noise"] * scheduler->initNoiseSigma();
        EXPECT_TENSOR_NEAR(x, v[p + "x_init"], 1e-6 * std::max(1.0, v[p + "x_init"].abs().max().item<double>()));
        const NoiseSource stored = [&](const torch::Tensor&, int i) {
            return v[p + "step" + std::to_string(i) + ".injected_noise"];
        };
        for (std::size_t i = 0; i < scheduler->timesteps().size(); ++i) {
            const std::string s = p + "step" + std::to_string(i) + ".";
            const auto xIn = scheduler->scaleModelInput(x, static_cast<int>(i));
            const double scale = std::max(1.0, v[s + "prev_sample"].abs().max().item<double>());
            EXPECT_TENSOR_NEAR(xIn, v[s + "x_in"], 2e-6 * std::max(1.0, v[s + "x_in"].abs().max().item<double>()));
            const float t = scheduler->timesteps()[i];
            const auto out = A * xIn + B * std::cos(W * t);
            x = scheduler->step(out, static_cast<int>(i), x, stored);
            EXPECT_TENSOR_NEAR(x, v[s + "prev_sample"], 2e-6 * scale);
            if (v.has(s + "pred_original_sample")) {
                EXPECT_TENSOR_NEAR(scheduler->lastPredictedOriginal(), v[s + "pred_original_sample"],
                                   2e-6 * std::max(1.0, v[s + "pred_original_sample"].abs().max().item<double>()));
            }
        }
        ++checked;
    }
    EXPECT_GT(checked, 0);
}

}  // namespace

TEST(SchedulerParity, Sd15Schedules) { checkSchedules("scheduler_reference.json", "scheduler_vectors.safetensors"); }
TEST(SchedulerParity, Sd15Trajectories) {
    checkTrajectories("scheduler_reference.json", "scheduler_vectors.safetensors");
}
TEST(SchedulerParity, VPredictionSchedules) {
    checkSchedules("sd2_scheduler_reference.json", "sd2_scheduler_vectors.safetensors");
}
TEST(SchedulerParity, VPredictionTrajectories) {
    checkTrajectories("sd2_scheduler_reference.json", "sd2_scheduler_vectors.safetensors");
}

TEST(SchedulerNames, DiffusersAndA1111Spellings) {
    EXPECT_EQ(parseSchedulerName("EulerAncestralDiscreteScheduler").kind, SchedulerKind::EulerAncestral);
    EXPECT_EQ(parseSchedulerName("Euler a").kind, SchedulerKind::EulerAncestral);
    const auto k = parseSchedulerName("DPM++ 2M Karras");
    EXPECT_EQ(k.kind, SchedulerKind::DPMPP2M);
    EXPECT_TRUE(k.karras);
    EXPECT_FALSE(parseSchedulerName("DPMSolverMultistepScheduler").karras);
    EXPECT_EQ(parseSchedulerName("ddim").kind, SchedulerKind::DDIM);
    EXPECT_THROW(parseSchedulerName("Nope"), std::invalid_argument);
}
