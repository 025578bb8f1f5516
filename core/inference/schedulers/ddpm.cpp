#include "inference/schedulers/ddpm.h"

#include <algorithm>
#include <cmath>

#include "inference/schedulers/ddim.h"

namespace easel::inference {

DDPMScheduler::DDPMScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    const auto a = m_alphasCumprod.contiguous();
    m_alphas.assign(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
}

void DDPMScheduler::setTimesteps(int n) {
    const auto t = spacedTimesteps(m_config.spacing.value_or(TimestepSpacing::Leading), m_config.numTrainTimesteps, n,
                                   m_config.stepsOffset);
    m_timesteps.clear();
    for (double v : t) m_timesteps.push_back(static_cast<float>(std::nearbyint(v)));
    m_sigmas.clear();
}

torch::Tensor DDPMScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                  const NoiseSource& noise) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const auto k = static_cast<std::size_t>(i);
    const int t = static_cast<int>(m_timesteps.at(k));
    // The previous timestep is the next one in the list; after the last, alpha_prev = 1.
    const int prevT = k + 1 < m_timesteps.size() ? static_cast<int>(m_timesteps[k + 1]) : -1;
    const float alpha = m_alphas.at(static_cast<std::size_t>(t));
    const float alphaPrev = prevT >= 0 ? m_alphas.at(static_cast<std::size_t>(prevT)) : 1.0f;
    const float beta = 1.0f - alpha;
    const float betaPrev = 1.0f - alphaPrev;
    const float currentAlpha = alpha / alphaPrev;
    const float currentBeta = 1.0f - currentAlpha;
    if (m_config.prediction == PredictionType::Epsilon) {
        m_predOriginal = (sample - std::sqrt(beta) * out) / std::sqrt(alpha);
    } else {
        m_predOriginal = std::sqrt(alpha) * sample - std::sqrt(beta) * out;
    }
    // Ho et al. 2020, eq. 7: the posterior mean.
    const float x0Coeff = std::sqrt(alphaPrev) * currentBeta / beta;
    const float sampleCoeff = std::sqrt(currentAlpha) * betaPrev / beta;
    auto prev = x0Coeff * m_predOriginal + sampleCoeff * sample;
    if (t > 0) {
        // "fixed_small": the posterior variance, kept above 1e-20 (so the step to t = 0 adds ~1e-10).
        const float variance = std::max((1.0f - alphaPrev) / (1.0f - alpha) * currentBeta, 1e-20f);
        prev = prev + std::sqrt(variance) * noise(prev, i);
    }
    return prev;
}

torch::Tensor DDPMScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    return addNoiseDDPM(m_alphasCumprod, original, noise,
                        static_cast<int>(m_timesteps.at(static_cast<std::size_t>(i))));
}

}  // namespace easel::inference
