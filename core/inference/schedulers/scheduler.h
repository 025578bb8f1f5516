#pragma once
// The scheduler contract of diffusers: setTimesteps(n), timesteps(), initNoiseSigma(),
// scaleModelInput(x, i), step(modelOutput, i, sample). Steps are addressed by index into
// timesteps(), which is what diffusers tracks internally as step_index.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
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
    // Sigmas for the sigma-space samplers (empty for DDIM/LCM).
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

enum class SchedulerKind { Euler, EulerAncestral, DDIM, DPMPP2M, LCM, Heun };

// Parses the diffusers class names (EulerDiscreteScheduler, DPMSolverMultistepScheduler, ...) and
// the A1111 names ("Euler a", "DPM++ 2M Karras", ...). A1111 "Karras" names set useKarrasSigmas.
// Throws std::invalid_argument listing the accepted names.
struct SchedulerChoice {
    SchedulerKind kind;
    bool karras = false;
};
SchedulerChoice parseSchedulerName(const std::string& name);
std::vector<std::string> schedulerNames();

std::unique_ptr<Scheduler> makeScheduler(SchedulerKind kind, SchedulerConfig config);

// Helpers shared by the sigma-space samplers (Euler, Euler a, DPM++): the training sigmas
// sqrt((1 - a) / a), linear interpolation at fractional t, Karras et al. 2022 eq. 5 spacing, and
// the inverse map sigma -> t by interpolating log sigma.
std::vector<double> trainingSigmas(const torch::Tensor& alphasCumprod);
double interpolate(const std::vector<double>& values, double t);
std::vector<double> karrasSigmas(double sigmaMin, double sigmaMax, int n, double rho = 7.0);
double sigmaToT(double sigma, const std::vector<double>& logSigmas);
std::vector<double> spacedTimesteps(TimestepSpacing spacing, int numTrain, int n, int stepsOffset);

}  // namespace easel::inference
