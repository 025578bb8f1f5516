#pragma once
// The scheduler contract of diffusers: setTimesteps(n), timesteps(), initNoiseSigma(),
// scaleModelInput(x, i), step(modelOutput, i, sample). Steps are addressed by index into
// timesteps(), which is what diffusers tracks internally as step_index.

#include <torch/torch.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inference/models/model_configs.h"

namespace easel::inference {

enum class TimestepSpacing { Linspace, Leading, Trailing };

struct SchedulerConfig {
    int numTrainTimesteps = 1000;
    double betaStart = 0.00085;
    double betaEnd = 0.012;
    bool scaledLinear = true;  // "scaled_linear" (SD) or "linear"
    int stepsOffset = 1;
    bool setAlphaToOne = false;
    PredictionType prediction = PredictionType::Epsilon;
    std::optional<TimestepSpacing> spacing;  // unset: the algorithm's diffusers default
    bool useKarrasSigmas = false;
    int originalInferenceSteps = 50;  // LCM
    double timestepScaling = 10.0;    // LCM
    // The DPM-Solver family, UniPC and DEIS, in diffusers' spelling. algorithmType: "dpmsolver++" or
    // "sde-dpmsolver++" (DPM++ 2M SDE) for DPMSolverMultistepScheduler, "dpmsolver++" for the
    // singlestep one, "deis" for DEIS; solverType: "midpoint" (DPM-Solver), "bh2" (UniPC), "logrho"
    // (DEIS). Empty: the class's default. Other values, and solver orders other than 1 and 2, are
    // refused with std::invalid_argument when the scheduler is made.
    std::string algorithmType;
    std::string solverType;
    int solverOrder = 2;
    bool lowerOrderFinal = true;
    bool skipPrkSteps = true;  // PNDM: only the PLMS form that SD's scheduler_config.json selects
};

// Draws the noise that ancestral samplers add at a step; tests substitute stored noise.
using NoiseSource = std::function<torch::Tensor(const torch::Tensor& like, int stepIndex)>;

class Scheduler {
public:
    explicit Scheduler(SchedulerConfig config);
    virtual ~Scheduler() = default;

    virtual void setTimesteps(int numInferenceSteps) = 0;
    // Model evaluations per step (diffusers' `order`): 2 for Heun, whose timesteps() lists each
    // inner timestep twice; img2img starts at index start_step * order().
    virtual int order() const { return 1; }
    // Model timesteps (float; fractional for Euler/Karras), one per model evaluation.
    const std::vector<float>& timesteps() const { return m_timesteps; }
    // Sigmas for the sigma-space samplers (empty for DDIM, LCM, PNDM, DDPM); diffusers' table, which
    // for the DPM-Solver family, UniPC and DEIS has one entry more than timesteps().
    const std::vector<float>& sigmas() const { return m_sigmas; }
    virtual float initNoiseSigma() const { return 1.0f; }
    virtual torch::Tensor scaleModelInput(const torch::Tensor& sample, int stepIndex) const;
    virtual torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                               const NoiseSource& noise) = 0;
    // Noise a clean sample to the level of timesteps()[stepIndex] (img2img, inpainting).
    virtual torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const = 0;
    // x0 estimate for a cheap preview, when the scheduler knows one.
    const torch::Tensor& lastPredictedOriginal() const { return m_predOriginal; }

    const SchedulerConfig& config() const { return m_config; }
    const torch::Tensor& alphasCumprod() const { return m_alphasCumprod; }

protected:
    SchedulerConfig m_config;
    torch::Tensor m_alphasCumprod;  // float32 [numTrainTimesteps]
    std::vector<float> m_timesteps;
    std::vector<float> m_sigmas;
    torch::Tensor m_predOriginal;
};

// One per diffusers class; DPMPP2M is DPMSolverMultistepScheduler, whose SchedulerConfig::algorithmType
// selects DPM++ 2M or DPM++ 2M SDE.
enum class SchedulerKind {
    Euler,
    EulerAncestral,
    DDIM,
    DPMPP2M,
    LCM,
    Heun,
    PNDM,
    LMS,
    KDPM2,
    KDPM2Ancestral,
    DPMSolverSinglestep,
    UniPC,
    DEIS,
    DDPM
};

// Parses the diffusers class names (EulerDiscreteScheduler, DPMSolverMultistepScheduler, ...) and
// the A1111 names ("Euler a", "DPM++ 2M SDE Karras", ...), all from common/sampler_names.h. A1111
// "Karras" names set karras; "DPM++ 2M SDE" sets algorithmType. Throws std::invalid_argument listing
// the accepted names.
struct SchedulerChoice {
    SchedulerKind kind = SchedulerKind::Euler;
    bool karras = false;
    std::string algorithmType;  // SchedulerConfig::algorithmType; empty: the class's default

    // The choice's algorithm and Karras flag written into a config (the rest of it is kept).
    void applyTo(SchedulerConfig& config) const;
};
SchedulerChoice parseSchedulerName(const std::string& name);
std::vector<std::string> schedulerNames();
// The diffusers class name of a kind.
std::string schedulerClassName(SchedulerKind kind);
// The A1111 name of what a kind and config run, for the PNG infotext ("DPM++ 2M SDE Karras"; the
// class name where A1111 has none).
std::string samplerInfotextName(SchedulerKind kind, const SchedulerConfig& config);
// Whether the diffusers class has use_karras_sigmas (others ignore the flag).
bool supportsKarrasSigmas(SchedulerKind kind);

std::unique_ptr<Scheduler> makeScheduler(SchedulerKind kind, SchedulerConfig config);

// Helpers shared by the sigma-space samplers (Euler, Euler a, DPM++): the training sigmas
// sqrt((1 - a) / a), linear interpolation at fractional t, Karras et al. 2022 eq. 5 spacing, and
// the inverse map sigma -> t by interpolating log sigma.
std::vector<double> trainingSigmas(const torch::Tensor& alphasCumprod);
double interpolate(const std::vector<double>& values, double t);
std::vector<double> karrasSigmas(double sigmaMin, double sigmaMax, int n, double rho = 7.0);
double sigmaToT(double sigma, const std::vector<double>& logSigmas);
std::vector<double> spacedTimesteps(TimestepSpacing spacing, int numTrain, int n, int stepsOffset);
// The integer timesteps of the DPM-Solver family, UniPC and DEIS: spacing over n + 1 points with the
// last one dropped (linspace: round(linspace(0, T - 1, n + 1))[::-1][:-1]).
std::vector<double> solverTimesteps(TimestepSpacing spacing, int numTrain, int n, int stepsOffset);
// Their schedule for the scheduler's config: those timesteps with the sigmas interpolated there,
// or Karras sigmas with the rounded inverse map as timesteps. Sigmas in float32, without the final one.
struct SolverSchedule {
    std::vector<double> timesteps;
    std::vector<float> sigmas;
};
SolverSchedule solverSchedule(const Scheduler& scheduler, TimestepSpacing spacing, int n);
// VP coefficients of a sigma-space noise level, in float32 as diffusers computes them:
// alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma alpha_t, lambda = log(alpha_t) - log(sigma_t).
struct AlphaSigma {
    float alpha, sigma, lambda;
};
AlphaSigma alphaSigma(float sigma);
// Throws std::invalid_argument naming the scheduler and option when ok is false.
void requireOption(bool ok, const std::string& scheduler, const std::string& what);
// The options of the multistep solver family that Easel runs: algorithm_type among `algorithms` and
// solver_type among `solverTypes` (unset is always fine; an empty list takes any), solver_order 1 or 2.
void requireSolverOptions(const SchedulerConfig& config, const std::string& scheduler,
                          std::initializer_list<std::string_view> algorithms,
                          std::initializer_list<std::string_view> solverTypes);

}  // namespace easel::inference
