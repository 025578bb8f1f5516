// Parity with diffusers 0.40 for the schedulers of the reference set's schedulers2/ folder (see its
// README): PNDM (PLMS), LMS, DPM2, DPM2 a, singlestep DPM-Solver++, DPM++ 2M SDE, UniPC, DEIS and
// DDPM. Every schedule table; every step of every trajectory fed the stored inputs; the trajectories
// replayed whole with the stored noise; the img2img start and its continuation. Nothing about a run
// is assumed: class, config, step counts, strength and the fake denoiser all come from the JSON.
// Then the engine-level checks: every sampler name runs through the real denoising loop, and names
// round-trip through the shared table and the PNG infotext.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "common/infotext.h"
#include "common/sampler_names.h"
#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/pipelines/denoising_loop.h"
#include "inference/schedulers/dpm_solver_singlestep.h"
#include "inference/schedulers/k_dpm_2_discrete.h"
#include "inference/schedulers/lms_discrete.h"
#include "reference_model_folder.h"
#include "reference_models.h"

using namespace easel::inference;
using easel::testing::ReferenceVectors;
using easel::testing::schedulerConfigOf;
using easel::testing::schedulerKindOf;
using nlohmann::json;

namespace {

const json& reference() {
    static const json j = easel::testing::referenceJson("schedulers2/scheduler_reference.json");
    return j;
}

const ReferenceVectors& vectors() {
    static const ReferenceVectors v("schedulers2/scheduler_vectors.safetensors");
    return v;
}

// JSON numbers, with the non-finite ones written as strings ("nan", "inf", "-inf").
double number(const json& v) {
    if (!v.is_string()) return v.get<double>();
    const auto s = v.get<std::string>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    throw std::runtime_error("not a number: " + s);
}

// Settings Easel's schedulers do not model must hold the value they implement; a reference set with
// another value would otherwise pass or fail for the wrong reason.
std::vector<std::string> unmodelledSettings(const json& c) {
    std::vector<std::string> out;
    const auto require = [&](const char* key, std::initializer_list<json> accepted) {
        if (!c.contains(key)) return;
        for (const auto& a : accepted) {
            if (c[key] == a) return;
        }
        out.push_back(std::string(key) + "=" + c[key].dump());
    };
    require("beta_schedule", {"scaled_linear", "linear"});
    require("trained_betas", {nullptr});
    require("timestep_spacing", {"linspace", "leading", "trailing"});
    require("thresholding", {false});
    require("clip_sample", {false});
    require("rescale_betas_zero_snr", {false});
    require("use_exponential_sigmas", {false});
    require("use_beta_sigmas", {false});
    require("use_flow_sigmas", {false});
    require("use_lu_lambdas", {false});
    require("use_dynamic_shifting", {false});
    require("final_sigmas_type", {"zero"});
    require("lambda_min_clipped", {"-inf"});
    require("euler_at_final", {false});
    require("variance_type", {nullptr, "fixed_small"});
    require("predict_x0", {true});
    require("disable_corrector", {json::array()});
    require("solver_p", {nullptr});
    require("sigma_min", {nullptr});
    require("sigma_max", {nullptr});
    require("shift_terminal", {nullptr});
    return out;
}

std::unique_ptr<Scheduler> schedulerFor(const std::string& name) {
    const auto& entry = reference()["schedules"].at(name);
    const auto& config = entry.at("config");
    EXPECT_EQ(unmodelledSettings(config), std::vector<std::string>{}) << name;
    return makeScheduler(schedulerKindOf(entry.at("scheduler_class").get<std::string>()), schedulerConfigOf(config));
}

// The fake denoiser of the JSON: float32(A) x_in in float32, B cos(W t) in float64 rounded once to
// float32, their sum in float32 (which reproduces the stored eps bit for bit).
struct FakeDenoiser {
    double a, b, w;
    torch::Tensor operator()(const torch::Tensor& xIn, double t) const {
        return xIn * static_cast<float>(a) + static_cast<float>(b * std::cos(w * t));
    }
};

FakeDenoiser fakeDenoiser() {
    const auto& f = reference().at("fake_denoiser");
    return {f.at("A").get<double>(), f.at("B").get<double>(), f.at("W").get<double>()};
}

double scaleOf(const torch::Tensor& t) { return std::max(1.0, t.abs().max().item<double>()); }

double relativeDiff(const torch::Tensor& a, const torch::Tensor& ref) {
    EXPECT_EQ(a.sizes(), ref.sizes());
    return easel::testing::maxAbsDiff(a, ref) / scaleOf(ref);
}

void expectTable(const std::vector<float>& actual, const json& expected, double relTol, const std::string& what) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        const double e = number(expected[i]);
        if (std::isnan(e)) {
            EXPECT_TRUE(std::isnan(actual[i])) << what << "[" << i << "] = " << actual[i] << ", diffusers has NaN";
        } else {
            EXPECT_NEAR(actual[i], e, relTol * std::max(1.0, std::abs(e))) << what << "[" << i << "]";
        }
    }
}

// The largest deviations per scheduler entry, printed at the end of each test for the record.
struct Deviations {
    double prevSample = 0, predOriginal = 0, lmsCoefficient = 0, timestep = 0;
};

void print(const char* what, const std::map<std::string, Deviations>& d) {
    for (const auto& [name, v] : d) {
        std::printf("[schedulers2 %s] %-26s prev_sample %.2e  pred_original %.2e  lms %.2e  t %.2e\n", what,
                    name.c_str(), v.prevSample, v.predOriginal, v.lmsCoefficient, v.timestep);
    }
}

// Tolerances: one step of float32 scheduler arithmetic differs from diffusers' by rounding only
// (README: ~1e-6 max|x|); a whole run accumulates those through up to 59 steps.
constexpr double kStepTolerance = 1e-6;
constexpr double kReplayTolerance = 1e-5;
constexpr double kTimestepTolerance = 2e-4;  // a few float32 ulps of the fractional timesteps near 1000

// One stored run (`prefix` is "traj.<name>.<N>." or "img2img.<name>.<N>."), from schedule index
// `first` and sample x. Step by step, every step starts from the stored sample and model output;
// replayed, the run continues on its own samples and the fake denoiser. The stored noise stands in
// for each draw, and the number of draws per step must match.
Deviations runStored(Scheduler& scheduler, const json& steps, const std::string& prefix, int first, torch::Tensor x,
                     bool replay, double tolerance) {
    const auto& v = vectors();
    const auto f = fakeDenoiser();
    const auto* lms = dynamic_cast<const LMSDiscreteScheduler*>(&scheduler);
    Deviations d;
    for (std::size_t k = 0; k < steps.size(); ++k) {
        const auto& meta = steps[k];
        const int i = first + static_cast<int>(k);
        const std::string key = prefix + "step" + std::to_string(k) + ".";
        SCOPED_TRACE(key);
        if (!replay && k > 0) x = v[prefix + "step" + std::to_string(k - 1) + ".prev_sample"];
        const double t = scheduler.timesteps().at(static_cast<std::size_t>(i));
        d.timestep = std::max(d.timestep, std::abs(t - number(meta.at("t"))));
        EXPECT_NEAR(t, number(meta.at("t")), kTimestepTolerance);
        const auto xIn = scheduler.scaleModelInput(x, i);
        EXPECT_LE(relativeDiff(xIn, v[key + "x_in"]), tolerance);
        torch::Tensor eps;
        if (replay) {
            eps = f(xIn, t);
        } else {
            eps = v[key + "eps"];
            // The JSON's denoiser gives the stored eps from the stored input, bit for bit.
            EXPECT_EQ(easel::testing::maxAbsDiff(f(v[key + "x_in"], number(meta.at("t"))), eps), 0.0);
        }
        int draws = 0;
        const NoiseSource stored = [&](const torch::Tensor& like, int stepIndex) {
            EXPECT_EQ(stepIndex, i);
            ++draws;
            return v[key + "injected_noise"].to(like.options());
        };
        x = scheduler.step(eps, i, x, stored);
        EXPECT_EQ(draws, meta.at("num_noise_draws").get<int>());
        const double dev = relativeDiff(x, v[key + "prev_sample"]);
        d.prevSample = std::max(d.prevSample, dev);
        EXPECT_LE(dev, tolerance);
        if (meta.value("has_pred_original_sample", false)) {
            const double x0 = relativeDiff(scheduler.lastPredictedOriginal(), v[key + "pred_original_sample"]);
            d.predOriginal = std::max(d.predOriginal, x0);
            EXPECT_LE(x0, tolerance);
        }
        if (meta.contains("lms_coefficients")) {
            // diffusers integrates with scipy's quad on a float32 integrand; Easel exactly. The JSON
            // says how far apart the two are.
            const double documented = reference().at("lms_max_rel_diff_quad_vs_exact").get<double>();
            const auto stored = v[key + "lms_coefficients"];
            EXPECT_NE(lms, nullptr);
            if (lms == nullptr || lms->lastCoefficients().size() != static_cast<std::size_t>(stored.numel())) {
                ADD_FAILURE() << "the scheduler has no LMS coefficients of the stored count " << stored.numel();
                continue;
            }
            for (std::int64_t c = 0; c < stored.numel(); ++c) {
                const double e = stored[c].item<double>();
                EXPECT_DOUBLE_EQ(e, number(meta["lms_coefficients"][static_cast<std::size_t>(c)]));
                const double rel = std::abs(lms->lastCoefficients()[static_cast<std::size_t>(c)] - e) / std::abs(e);
                d.lmsCoefficient = std::max(d.lmsCoefficient, rel);
                EXPECT_LE(rel, 1.5 * documented) << "coefficient " << c;
            }
        }
    }
    return d;
}

void checkTrajectories(bool replay) {
    const auto& v = vectors();
    std::map<std::string, Deviations> deviations;
    for (const auto& [name, entry] : reference().at("trajectories").items()) {
        SCOPED_TRACE("trajectory " + name);
        auto scheduler = schedulerFor(name);
        EXPECT_EQ(schedulerClassName(schedulerKindOf(entry.at("scheduler_class").get<std::string>())),
                  entry.at("scheduler_class").get<std::string>());
        scheduler->setTimesteps(entry.at("num_inference_steps").get<int>());
        const auto& steps = entry.at("steps");
        ASSERT_EQ(scheduler->timesteps().size(), steps.size());
        ASSERT_EQ(steps.size(), entry.at("num_model_evaluations").get<std::size_t>());
        const std::string p = "traj." + name + ".";
        const auto x = v[p + "noise"] * scheduler->initNoiseSigma();
        EXPECT_LE(relativeDiff(x, v[p + "x_init"]), kStepTolerance);
        deviations[name] =
            runStored(*scheduler, steps, p, 0, v[p + "x_init"], replay, replay ? kReplayTolerance : kStepTolerance);
        int draws = 0;
        for (const auto& s : steps) draws += s.at("num_noise_draws").get<int>();
        EXPECT_EQ(draws, entry.at("total_noise_draws").get<int>());
    }
    EXPECT_FALSE(deviations.empty());
    print(replay ? "replayed" : "step by step", deviations);
}

}  // namespace

TEST(Scheduler2Parity, SchedulesMatchDiffusers) {
    const auto& v = vectors();
    int checked = 0;
    for (const auto& [name, entry] : reference().at("schedules").items()) {
        SCOPED_TRACE("schedule " + name);
        auto scheduler = schedulerFor(name);
        const int n = entry.at("num_inference_steps").get<int>();
        scheduler->setTimesteps(n);
        EXPECT_EQ(scheduler->order(), entry.at("order").get<int>());
        EXPECT_NEAR(scheduler->initNoiseSigma(), number(entry.at("init_noise_sigma")),
                    1e-6 * std::max(1.0, number(entry.at("init_noise_sigma"))));
        const auto& timesteps = entry.at("timesteps");
        ASSERT_EQ(scheduler->timesteps().size(), entry.at("num_model_evaluations").get<std::size_t>());
        ASSERT_EQ(scheduler->timesteps().size(), timesteps.size());
        const auto stored = v[name + ".timesteps"].to(torch::kFloat64);
        for (std::size_t i = 0; i < timesteps.size(); ++i) {
            EXPECT_NEAR(scheduler->timesteps()[i], number(timesteps[i]), kTimestepTolerance) << i;
            EXPECT_EQ(stored[static_cast<std::int64_t>(i)].item<double>(), number(timesteps[i])) << i;
        }
        if (entry.contains("sigmas")) {
            expectTable(scheduler->sigmas(), entry["sigmas"], 1e-6, "sigmas");
        } else {
            EXPECT_TRUE(scheduler->sigmas().empty());
        }
        const auto* kdpm2 = dynamic_cast<const KDPM2DiscreteScheduler*>(scheduler.get());
        for (const auto& [key, table] : {std::pair{"sigmas_interpol", kdpm2 ? &kdpm2->sigmasInterpol() : nullptr},
                                         std::pair{"sigmas_up", kdpm2 ? &kdpm2->sigmasUp() : nullptr},
                                         std::pair{"sigmas_down", kdpm2 ? &kdpm2->sigmasDown() : nullptr}}) {
            if (!entry.contains(key)) continue;
            ASSERT_NE(table, nullptr) << key;
            expectTable(*table, entry[key], 1e-6, key);
        }
        if (entry.contains("alphas_cumprod_at_timesteps")) {
            std::vector<float> at;
            for (const float t : scheduler->timesteps())
                at.push_back(scheduler->alphasCumprod()[static_cast<std::int64_t>(t)].item<float>());
            expectTable(at, entry["alphas_cumprod_at_timesteps"], 0.0, "alphas_cumprod_at_timesteps");
        }
        if (entry.contains("order_list")) {
            const auto* singlestep = dynamic_cast<const DPMSolverSinglestepScheduler*>(scheduler.get());
            ASSERT_NE(singlestep, nullptr);
            EXPECT_EQ(singlestep->orderList(), entry["order_list"].get<std::vector<int>>());
        }
        EXPECT_EQ(easel::testing::maxAbsDiff(scheduler->alphasCumprod(), v["alphas_cumprod"]), 0.0);
        ++checked;
    }
    EXPECT_GT(checked, 0);
}

TEST(Scheduler2Parity, EveryStepMatchesDiffusersOnTheStoredInputs) { checkTrajectories(false); }

TEST(Scheduler2Parity, WholeTrajectoriesReplayWithTheStoredNoise) { checkTrajectories(true); }

// StableDiffusionImg2ImgPipeline's start (get_timesteps, prepare_latents) as Easel's denoising loop
// does it, then the continuation, step by step and replayed.
TEST(Scheduler2Parity, Img2ImgStartsAndContinuesLikeDiffusers) {
    const auto& v = vectors();
    std::map<std::string, Deviations> stepwise, replayed;
    for (const auto& [name, entry] : reference().at("img2img").items()) {
        SCOPED_TRACE("img2img " + name);
        const int n = entry.at("num_inference_steps").get<int>();
        const float strength = entry.value("strength", reference().at("img2img_strength").get<float>());
        const std::string p = "img2img." + name + ".";
        for (const bool replay : {false, true}) {
            auto scheduler = schedulerFor(name);
            scheduler->setTimesteps(n);
            EXPECT_EQ(scheduler->order(), entry.at("scheduler_order").get<int>());
            EXPECT_EQ(img2imgStartIndex(n, strength), entry.at("t_start").get<int>());
            const int begin = img2imgStartIndex(n, strength) * scheduler->order();
            ASSERT_EQ(begin, entry.at("begin_index").get<int>());
            const auto& timesteps = entry.at("timesteps");
            ASSERT_EQ(scheduler->timesteps().size() - static_cast<std::size_t>(begin), timesteps.size());
            for (std::size_t k = 0; k < timesteps.size(); ++k) {
                EXPECT_NEAR(scheduler->timesteps()[static_cast<std::size_t>(begin) + k], number(timesteps[k]),
                            kTimestepTolerance);
            }
            const float latentTimestep = scheduler->timesteps().at(static_cast<std::size_t>(begin));
            EXPECT_NEAR(latentTimestep, number(entry.at("latent_timestep")), kTimestepTolerance);
            EXPECT_NEAR(latentTimestep, v[p + "latent_timestep"].to(torch::kFloat64).item<double>(),
                        kTimestepTolerance);
            if (entry.contains("sigma_at_begin_index")) {
                EXPECT_NEAR(scheduler->sigmas().at(static_cast<std::size_t>(begin)),
                            number(entry["sigma_at_begin_index"]),
                            1e-6 * std::max(1.0, static_cast<double>(scheduler->sigmas()[0])));
            }
            if (entry.contains("alpha_cumprod_at_latent_timestep")) {
                EXPECT_EQ(scheduler->alphasCumprod()[static_cast<std::int64_t>(latentTimestep)].item<float>(),
                          static_cast<float>(number(entry["alpha_cumprod_at_latent_timestep"])));
            }
            const auto noised = scheduler->addNoise(v[p + "init_latent"], v[p + "noise"], begin);
            EXPECT_LE(relativeDiff(noised, v[p + "noised_latent"]), kStepTolerance);
            const auto d = runStored(*scheduler, entry.at("steps"), p, begin, v[p + "noised_latent"], replay,
                                     replay ? kReplayTolerance : kStepTolerance);
            (replay ? replayed : stepwise)[name] = d;
        }
    }
    EXPECT_FALSE(stepwise.empty());
    print("img2img step by step", stepwise);
    print("img2img replayed", replayed);
}

// --- Names and the engine -------------------------------------------------------------------------

TEST(Scheduler2Names, HostedAPIClassNamesParse) {
    for (const char* cls :
         {"UniPCMultistepScheduler", "PNDMScheduler", "LMSDiscreteScheduler", "KDPM2DiscreteScheduler",
          "KDPM2AncestralDiscreteScheduler", "DPMSolverSinglestepScheduler", "DEISMultistepScheduler", "DDPMScheduler",
          "DPMSolverMultistepScheduler", "EulerDiscreteScheduler"}) {
        const auto choice = parseSchedulerName(cls);
        EXPECT_EQ(schedulerClassName(choice.kind), cls);
        EXPECT_FALSE(choice.karras) << cls;
        EXPECT_TRUE(choice.algorithmType.empty()) << cls;
    }
    const auto sde = parseSchedulerName("DPM++ 2M SDE Karras");
    EXPECT_EQ(sde.kind, SchedulerKind::DPMPP2M);
    EXPECT_EQ(sde.algorithmType, "sde-dpmsolver++");
    EXPECT_TRUE(sde.karras);
    EXPECT_EQ(parseSchedulerName("plms").kind, SchedulerKind::PNDM);
    EXPECT_EQ(parseSchedulerName("DPM2 a Karras").kind, SchedulerKind::KDPM2Ancestral);
    // A1111's "DPM++ SDE" is a different (Brownian-tree) sampler: unknown, not silently another.
    try {
        parseSchedulerName("DPM++ SDE");
        FAIL() << "DPM++ SDE parsed";
    } catch (const std::invalid_argument& e) {
        const std::string message = e.what();
        for (const char* listed : {"UniPC", "DPM++ 2M SDE Karras", "DPMSolverSinglestepScheduler", "PLMS"})
            EXPECT_NE(message.find(listed), std::string::npos) << listed << " missing from: " << message;
    }
}

TEST(Scheduler2Names, EveryTableEntryMakesItsSchedulerAndRoundTripsThroughTheInfotext) {
    for (const auto& entry : easel::kSamplerNames) {
        const std::string asked(entry.a1111.empty() ? entry.diffusersClass : entry.a1111);
        SCOPED_TRACE(asked);
        const auto choice = parseSchedulerName(asked);
        EXPECT_EQ(schedulerClassName(choice.kind), entry.diffusersClass);
        SchedulerConfig config;
        choice.applyTo(config);
        EXPECT_EQ(config.useKarrasSigmas, entry.karras && supportsKarrasSigmas(choice.kind));
        auto scheduler = makeScheduler(choice.kind, config);
        scheduler->setTimesteps(4);
        EXPECT_FALSE(scheduler->timesteps().empty());
        // The infotext names what ran; reading it back selects the same algorithm and schedule.
        const auto written = samplerInfotextName(choice.kind, config);
        if (!entry.a1111.empty() && config.useKarrasSigmas == entry.karras) {
            EXPECT_EQ(written, entry.a1111);
        }
        const auto back = parseSchedulerName(written);
        EXPECT_EQ(back.kind, choice.kind);
        EXPECT_EQ(back.algorithmType, choice.algorithmType);
        // The desktop app sends (scheduler, karras) and writes A1111 names from them.
        const auto api = easel::apiSchedulerName(entry);
        const auto viaApi = parseSchedulerName(api);
        EXPECT_EQ(viaApi.kind, choice.kind);
        EXPECT_EQ(viaApi.algorithmType, choice.algorithmType);
        if (!entry.a1111.empty()) {
            EXPECT_EQ(easel::a1111SamplerName(api, entry.karras), entry.a1111);
        }
    }
}

// Every name of the table through denoise() with the reference checkpoint's UNet, txt2img and
// img2img, on the model's own prediction type: finite latents that moved.
TEST(Scheduler2Names, EverySamplerRunsTheRealDenoisingLoop) {
    const auto cfg = easel::testing::referenceConfig();
    auto model = loadSingleFileCheckpoint(easel::testing::referenceFile(cfg["checkpoint"]["file"].get<std::string>()),
                                          easel::testing::overridesFor(cfg, cfg["text_encoder"]));
    const auto spec = easel::testing::pipelineSpec();
    const ReferenceVectors pipe(spec.file);
    const auto context = pipe["pipe.context"].chunk(2);
    const auto noise = pipe["pipe.noise"];
    torch::manual_seed(7);
    const auto init = torch::randn_like(noise);
    for (const auto& entry : easel::kSamplerNames) {
        const std::string name(entry.a1111.empty() ? entry.diffusersClass : entry.a1111);
        SCOPED_TRACE(name);
        const auto choice = parseSchedulerName(name);
        SchedulerConfig config;
        config.prediction = model.detected.prediction;
        choice.applyTo(config);
        for (const bool img2img : {false, true}) {
            auto scheduler = makeScheduler(choice.kind, config);
            DenoiseInputs in;
            in.uncond = context[0];
            in.cond = context[1];
            in.noise = noise;
            in.guidanceScale = spec.guidanceScale;
            in.numInferenceSteps = 6;
            if (img2img) {
                in.initLatents = init;
                in.strength = 0.6f;
            }
            int steps = 0;
            in.callback = [&](const StepProgress& p) {
                ++steps;
                EXPECT_EQ(p.step, steps);
                return true;
            };
            const auto out = denoise(model.unet, *scheduler, in);
            EXPECT_TRUE(torch::isfinite(out).all().item<bool>()) << (img2img ? "img2img" : "txt2img");
            EXPECT_GT(easel::testing::maxAbsDiff(out, img2img ? init : noise), 1e-3);
            EXPECT_EQ(steps, static_cast<int>(scheduler->timesteps().size()) -
                                 (img2img ? img2imgStartIndex(6, 0.6f) * scheduler->order() : 0));
        }
    }
}

// The Engine, as the server and the desktop app call it: each name in both spellings, txt2img and
// img2img, reports the name it was given and writes the A1111 name into the PNG parameters, which
// reads back to the same table entry.
TEST(Scheduler2Names, EngineRunsEachSamplerAndWritesItsA1111Name) {
    easel::testing::TempDir dir;
    Engine engine;
    engine.loadModel(easel::testing::referenceModelFolder(dir, "UniPC"));
    Image init;
    init.width = init.height = engine.model().defaultWidth;
    for (int i = 0; i < init.width * init.height; ++i) {
        for (int c = 0; c < 3; ++c) init.rgb.push_back(static_cast<std::uint8_t>((i * (c + 3)) % 251));
    }
    for (const auto& entry : easel::kSamplerNames) {
        const std::string name(entry.a1111.empty() ? entry.diffusersClass : entry.a1111);
        SCOPED_TRACE(name);
        for (const bool img2img : {false, true}) {
            GenerationRequest r;
            r.prompt = "a red circle";
            r.seed = 3;
            r.scheduler = name;
            if (img2img) {
                r.initImage = init;
                r.strength = 0.6f;
            }
            const auto result = engine.generate(r);
            ASSERT_EQ(result.images.size(), 1u);
            EXPECT_EQ(result.scheduler, name);
            EXPECT_FALSE(result.images[0].empty());
            const auto text = easel::Infotext::parse(result.infotexts.at(0));
            const auto sampler = text.fields.at("Sampler");
            const auto back = easel::findSamplerName(sampler);
            ASSERT_TRUE(back) << sampler;
            EXPECT_EQ(back->diffusersClass, entry.diffusersClass);
            EXPECT_EQ(back->algorithmType, entry.algorithmType);
            const bool karras = back->karras || text.fields.count("Schedule type") > 0;
            EXPECT_EQ(karras, entry.karras && supportsKarrasSigmas(parseSchedulerName(name).kind)) << sampler;
        }
    }
}
