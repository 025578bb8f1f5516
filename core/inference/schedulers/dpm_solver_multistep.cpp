#include "inference/schedulers/dpm_solver_multistep.h"

#include <cmath>

namespace easel::inference {
namespace {

struct AlphaSigma {
    float alpha, sigma, lambda;
};

// VP coefficients of a sigma-space noise level: alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma alpha_t,
// lambda = log(alpha_t) - log(sigma_t).
AlphaSigma vp(float sigma) {
    const float alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
    const float s = sigma * alpha;
    return {alpha, s, std::log(alpha) - std::log(s)};
}

}  // namespace

DPMSolverMultistepScheduler::DPMSolverMultistepScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {}

void DPMSolverMultistepScheduler::setTimesteps(int n) {
    const int T = m_config.numTrainTimesteps;
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    std::vector<double> t;
    if (spacing == TimestepSpacing::Linspace) {
        // np.linspace(0, T - 1, n + 1).round()[::-1][:-1]; numpy forms i * ((stop - start) / n), and
        // that rounding decides ties such as 499.5 at n = 30.
        const double delta = static_cast<double>(T - 1) / n;
        for (int i = n; i >= 1; --i) t.push_back(std::nearbyint(i == n ? static_cast<double>(T - 1) : i * delta));
    } else {
        t = spacedTimesteps(spacing, T, n, m_config.stepsOffset);
    }
    const auto train = trainingSigmas(m_alphasCumprod);
    std::vector<double> sigmas;
    if (m_config.useKarrasSigmas) {
        std::vector<double> logSigmas(train.size());
        for (std::size_t i = 0; i < train.size(); ++i) logSigmas[i] = std::log(train[i]);
        sigmas = karrasSigmas(train.front(), train.back(), n);
        t.clear();
        for (double s : sigmas) t.push_back(std::nearbyint(sigmaToT(s, logSigmas)));
    } else {
        for (double v : t) sigmas.push_back(interpolate(train, v));
    }
    m_timesteps.assign(t.begin(), t.end());
    m_sigmas.clear();
    for (double s : sigmas) m_sigmas.push_back(static_cast<float>(s));
    m_sigmas.push_back(0.0f);  // final_sigmas_type = "zero"
    m_previousX0 = torch::Tensor();
    m_lowerOrderCount = 0;
}

torch::Tensor DPMSolverMultistepScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                                const NoiseSource&) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const auto s0 = vp(m_sigmas[static_cast<std::size_t>(i)]);
    // Convert the model output to a data prediction x0 (the "++" of DPM-Solver++).
    torch::Tensor x0 = m_config.prediction == PredictionType::Epsilon ? (sample - s0.sigma * out) / s0.alpha
                                                                      : s0.alpha * sample - s0.sigma * out;
    m_predOriginal = x0;
    const float sigmaNext = m_sigmas[static_cast<std::size_t>(i) + 1];
    const bool last = i == static_cast<int>(m_timesteps.size()) - 1;
    torch::Tensor prev;
    if (sigmaNext == 0.0f) {
        // lambda_t = +inf: exp(-h) = 0 and the first-order update returns x0 exactly.
        prev = x0;
    } else {
        const auto t = vp(sigmaNext);
        const float h = t.lambda - s0.lambda;
        const float expm = std::exp(-h) - 1.0f;
        if (m_lowerOrderCount < 1 || last) {
            prev = (t.sigma / s0.sigma) * sample - (t.alpha * expm) * x0;
        } else {
            const auto s1 = vp(m_sigmas[static_cast<std::size_t>(i) - 1]);
            const float r0 = (s0.lambda - s1.lambda) / h;
            const auto d1 = (1.0f / r0) * (x0 - m_previousX0);
            prev = (t.sigma / s0.sigma) * sample - (t.alpha * expm) * x0 - 0.5f * (t.alpha * expm) * d1;
        }
    }
    m_previousX0 = x0;
    if (m_lowerOrderCount < 2) ++m_lowerOrderCount;
    return prev;
}

torch::Tensor DPMSolverMultistepScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise,
                                                    int i) const {
    const auto s = vp(m_sigmas[static_cast<std::size_t>(i)]);
    return s.alpha * original + s.sigma * noise;
}

}  // namespace easel::inference
