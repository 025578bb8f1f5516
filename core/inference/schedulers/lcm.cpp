#include "inference/schedulers/lcm.h"

#include <cmath>

#include "inference/schedulers/ddim.h"

namespace easel::inference {

LCMScheduler::LCMScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {}

void LCMScheduler::setTimesteps(int n) {
    const int original = m_config.originalInferenceSteps;
    const int k = m_config.numTrainTimesteps / original;
    std::vector<int> origin;  // the LCM training schedule: k-1, 2k-1, ..., T-1
    for (int i = 1; i <= original; ++i) origin.push_back(i * k - 1);
    m_timesteps.clear();
    const int count = static_cast<int>(origin.size());
    for (int i = 0; i < n; ++i) {
        // np.linspace(0, len, n, endpoint=False) floored, indexing the reversed schedule.
        const auto idx = static_cast<int>(std::floor(static_cast<double>(count) * i / n));
        m_timesteps.push_back(static_cast<float>(origin[static_cast<std::size_t>(count - 1 - idx)]));
    }
    m_sigmas.clear();
}

torch::Tensor LCMScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                 const NoiseSource& noise) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const int t = static_cast<int>(m_timesteps[static_cast<std::size_t>(i)]);
    const bool last = i == static_cast<int>(m_timesteps.size()) - 1;
    const int prevT = last ? t : static_cast<int>(m_timesteps[static_cast<std::size_t>(i) + 1]);
    const float alpha = m_alphasCumprod[t].item<float>();
    const float alphaPrev = prevT >= 0 ? m_alphasCumprod[prevT].item<float>()
                                       : (m_config.setAlphaToOne ? 1.0f : m_alphasCumprod[0].item<float>());
    // Boundary-condition scalings with sigma_data = 0.5 (LCM paper, eq. 9).
    const float sigmaData = 0.5f;
    const float scaled = static_cast<float>(t * m_config.timestepScaling);
    const float cSkip = sigmaData * sigmaData / (scaled * scaled + sigmaData * sigmaData);
    const float cOut = scaled / std::sqrt(scaled * scaled + sigmaData * sigmaData);
    const auto x0 = m_config.prediction == PredictionType::Epsilon
                        ? (sample - std::sqrt(1.0f - alpha) * out) / std::sqrt(alpha)
                        : std::sqrt(alpha) * sample - std::sqrt(1.0f - alpha) * out;
    const auto denoised = cOut * x0 + cSkip * sample;
    m_predOriginal = denoised;
    if (last) return denoised;
    return std::sqrt(alphaPrev) * denoised + std::sqrt(1.0f - alphaPrev) * noise(denoised, i);
}

torch::Tensor LCMScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    return addNoiseDDPM(m_alphasCumprod, original, noise, static_cast<int>(m_timesteps[static_cast<std::size_t>(i)]));
}

}  // namespace easel::inference
