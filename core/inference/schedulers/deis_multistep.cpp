#include "inference/schedulers/deis_multistep.h"

#include <cmath>

namespace easel::inference {
namespace {

// The integral of the order-2 Lagrange basis in log rho, up to t (Zhang & Chen 2023, eq. 15, the
// "ind_fn" of diffusers), in float32.
float logRhoIntegral(float t, float b, float c) {
    return t * (-std::log(c) + std::log(t) - 1.0f) / (std::log(b) - std::log(c));
}

}  // namespace

DEISMultistepScheduler::DEISMultistepScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    requireSolverOptions(m_config, "DEISMultistepScheduler", {"deis"}, {"logrho"});
}

void DEISMultistepScheduler::setTimesteps(int n) {
    auto schedule = solverSchedule(*this, m_config.spacing.value_or(TimestepSpacing::Linspace), n);
    m_sigmas = std::move(schedule.sigmas);
    // The last sigma: the Karras schedule's own minimum, else the smallest training sigma.
    m_sigmas.push_back(m_config.useKarrasSigmas ? m_sigmas.back()
                                                : static_cast<float>(trainingSigmas(m_alphasCumprod).front()));
    m_timesteps.assign(schedule.timesteps.begin(), schedule.timesteps.end());
    m_modelOutputs.assign(static_cast<std::size_t>(m_config.solverOrder), torch::Tensor());
    m_lowerOrderCount = 0;
}

torch::Tensor DEISMultistepScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                           const NoiseSource&) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const auto k = static_cast<std::size_t>(i);
    const int n = static_cast<int>(m_timesteps.size());
    const bool lowerOrderFinal = i == n - 1 && m_config.lowerOrderFinal && n < 15;
    const auto s0 = alphaSigma(m_sigmas.at(k));
    // diffusers goes through x0 and back to a noise prediction.
    const torch::Tensor x0 = m_config.prediction == PredictionType::Epsilon ? (sample - s0.sigma * out) / s0.alpha
                                                                            : s0.alpha * sample - s0.sigma * out;
    m_predOriginal = x0;
    const auto eps = (sample - s0.alpha * x0) / s0.sigma;
    m_modelOutputs.erase(m_modelOutputs.begin());
    m_modelOutputs.push_back(eps);

    const auto t = alphaSigma(m_sigmas.at(k + 1));
    torch::Tensor prev;
    if (m_config.solverOrder == 1 || m_lowerOrderCount < 1 || lowerOrderFinal) {
        // First order: the DDIM step written in lambda.
        const float h = t.lambda - s0.lambda;
        prev = (t.alpha / s0.alpha) * sample - (t.sigma * (std::exp(h) - 1.0f)) * eps;
    } else {
        const auto s1 = alphaSigma(m_sigmas.at(k - 1));
        const float rhoT = t.sigma / t.alpha, rho0 = s0.sigma / s0.alpha, rho1 = s1.sigma / s1.alpha;
        const float coef0 = logRhoIntegral(rhoT, rho0, rho1) - logRhoIntegral(rho0, rho0, rho1);
        const float coef1 = logRhoIntegral(rhoT, rho1, rho0) - logRhoIntegral(rho0, rho1, rho0);
        const auto& m1 = m_modelOutputs[m_modelOutputs.size() - 2];
        prev = t.alpha * (sample / s0.alpha + coef0 * eps + coef1 * m1);
    }
    if (m_lowerOrderCount < m_config.solverOrder) ++m_lowerOrderCount;
    return prev;
}

torch::Tensor DEISMultistepScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    const auto s = alphaSigma(m_sigmas.at(static_cast<std::size_t>(i)));
    return s.alpha * original + s.sigma * noise;
}

}  // namespace easel::inference
