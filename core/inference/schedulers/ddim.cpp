#include "inference/schedulers/ddim.h"

#include <cmath>

namespace easel::inference {

DDIMScheduler::DDIMScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {}

float DDIMScheduler::finalAlphaCumprod() const {
    return m_config.setAlphaToOne ? 1.0f : m_alphasCumprod[0].item<float>();
}

void DDIMScheduler::setTimesteps(int n) {
    m_numInferenceSteps = n;
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Leading);
    auto t = spacedTimesteps(spacing, m_config.numTrainTimesteps, n, m_config.stepsOffset);
    m_timesteps.clear();
    for (double v : t) m_timesteps.push_back(static_cast<float>(std::nearbyint(v)));
    m_sigmas.clear();
}

torch::Tensor DDIMScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                  const NoiseSource&) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const int t = static_cast<int>(m_timesteps[static_cast<std::size_t>(i)]);
    const int prevT = t - m_config.numTrainTimesteps / m_numInferenceSteps;
    const float alpha = m_alphasCumprod[t].item<float>();
    const float alphaPrev = prevT >= 0 ? m_alphasCumprod[prevT].item<float>() : finalAlphaCumprod();
    const float beta = 1.0f - alpha;
    torch::Tensor predEps;
    if (m_config.prediction == PredictionType::Epsilon) {
        m_predOriginal = (sample - std::sqrt(beta) * out) / std::sqrt(alpha);
        predEps = out;
    } else {
        m_predOriginal = std::sqrt(alpha) * sample - std::sqrt(beta) * out;
        predEps = std::sqrt(alpha) * out + std::sqrt(beta) * sample;
    }
    const auto direction = std::sqrt(1.0f - alphaPrev) * predEps;
    return std::sqrt(alphaPrev) * m_predOriginal + direction;
}

torch::Tensor addNoiseDDPM(const torch::Tensor& alphasCumprod, const torch::Tensor& original,
                           const torch::Tensor& noise, int timestep) {
    const float a = alphasCumprod[timestep].item<float>();
    return std::sqrt(a) * original + std::sqrt(1.0f - a) * noise;
}

torch::Tensor DDIMScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    return addNoiseDDPM(m_alphasCumprod, original, noise, static_cast<int>(m_timesteps[static_cast<std::size_t>(i)]));
}

}  // namespace easel::inference
