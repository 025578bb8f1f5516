#include "inference/schedulers/euler_discrete.h"

#include <algorithm>
#include <cmath>

namespace easel::inference {

EulerDiscreteScheduler::EulerDiscreteScheduler(SchedulerConfig config, bool ancestral)
    : Scheduler(std::move(config)), m_ancestral(ancestral) {}

void EulerDiscreteScheduler::setTimesteps(int n) {
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    auto t = spacedTimesteps(spacing, m_config.numTrainTimesteps, n, m_config.stepsOffset);
    const auto train = trainingSigmas(m_alphasCumprod);
    std::vector<double> sigmas(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) sigmas[i] = static_cast<float>(interpolate(train, t[i]));
    if (m_config.useKarrasSigmas && !m_ancestral) {
        std::vector<double> logSigmas(train.size());
        for (std::size_t i = 0; i < train.size(); ++i) logSigmas[i] = std::log(train[i]);
        sigmas = karrasSigmas(sigmas.back(), sigmas.front(), n);
        for (std::size_t i = 0; i < sigmas.size(); ++i) t[i] = sigmaToT(sigmas[i], logSigmas);
    }
    m_timesteps.assign(t.begin(), t.end());
    m_sigmas.clear();
    for (double s : sigmas) m_sigmas.push_back(static_cast<float>(s));
    m_sigmas.push_back(0.0f);
}

float EulerDiscreteScheduler::initNoiseSigma() const {
    const float maxSigma = *std::max_element(m_sigmas.begin(), m_sigmas.end());
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    if (spacing == TimestepSpacing::Linspace || spacing == TimestepSpacing::Trailing) return maxSigma;
    return std::sqrt(maxSigma * maxSigma + 1.0f);
}

torch::Tensor EulerDiscreteScheduler::scaleModelInput(const torch::Tensor& sample, int stepIndex) const {
    const float sigma = m_sigmas[static_cast<std::size_t>(stepIndex)];
    return sample / std::sqrt(sigma * sigma + 1.0f);
}

torch::Tensor EulerDiscreteScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                           const NoiseSource& noise) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const float sigma = m_sigmas[static_cast<std::size_t>(i)];
    const float sigmaNext = m_sigmas[static_cast<std::size_t>(i) + 1];
    if (m_config.prediction == PredictionType::Epsilon) {
        m_predOriginal = sample - sigma * out;
    } else {
        // v-prediction (Salimans & Ho 2022) in sigma space.
        m_predOriginal = out * (-sigma / std::sqrt(sigma * sigma + 1.0f)) + sample / (sigma * sigma + 1.0f);
    }
    const auto derivative = (sample - m_predOriginal) / sigma;
    if (!m_ancestral) return sample + derivative * (sigmaNext - sigma);
    const float sigmaUp = std::sqrt(sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext) / (sigma * sigma));
    const float sigmaDown = std::sqrt(sigmaNext * sigmaNext - sigmaUp * sigmaUp);
    auto prev = sample + derivative * (sigmaDown - sigma);
    return prev + noise(prev, i) * sigmaUp;
}

torch::Tensor EulerDiscreteScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    return original + noise * m_sigmas[static_cast<std::size_t>(i)];
}

}  // namespace easel::inference
