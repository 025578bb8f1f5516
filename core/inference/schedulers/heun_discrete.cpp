#include "inference/schedulers/heun_discrete.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace easel::inference {

HeunDiscreteScheduler::HeunDiscreteScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {}

void HeunDiscreteScheduler::setTimesteps(int n) {
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    auto t = spacedTimesteps(spacing, m_config.numTrainTimesteps, n, m_config.stepsOffset);
    const auto train = trainingSigmas(m_alphasCumprod);
    std::vector<double> sigmas(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) sigmas[i] = static_cast<float>(interpolate(train, t[i]));
    if (m_config.useKarrasSigmas) {
        std::vector<double> logSigmas(train.size());
        for (std::size_t i = 0; i < train.size(); ++i) logSigmas[i] = std::log(train[i]);
        sigmas = karrasSigmas(sigmas.back(), sigmas.front(), n);
        for (std::size_t i = 0; i < sigmas.size(); ++i) t[i] = sigmaToT(sigmas[i], logSigmas);
    }
    // diffusers: timesteps = [t0, t1, t1, ..., t_{n-1}, t_{n-1}], sigmas = [s0, s1, s1, ..., s_{n-1},
    // s_{n-1}, 0]; entry i of sigmas is the noise level of the sample the model sees at evaluation i.
    m_timesteps.assign(1, static_cast<float>(t.front()));
    m_sigmas.assign(1, static_cast<float>(sigmas.front()));
    for (std::size_t i = 1; i < t.size(); ++i) {
        m_timesteps.insert(m_timesteps.end(), 2, static_cast<float>(t[i]));
        m_sigmas.insert(m_sigmas.end(), 2, static_cast<float>(sigmas[i]));
    }
    m_sigmas.push_back(0.0f);
    m_prevDerivative = torch::Tensor();
    m_prevSample = torch::Tensor();
    m_firstOrder = true;
}

float HeunDiscreteScheduler::initNoiseSigma() const {
    const float maxSigma = *std::max_element(m_sigmas.begin(), m_sigmas.end());
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    if (spacing == TimestepSpacing::Linspace || spacing == TimestepSpacing::Trailing) return maxSigma;
    return std::sqrt(maxSigma * maxSigma + 1.0f);
}

torch::Tensor HeunDiscreteScheduler::scaleModelInput(const torch::Tensor& sample, int stepIndex) const {
    const float sigma = m_sigmas[static_cast<std::size_t>(stepIndex)];
    return sample / std::sqrt(sigma * sigma + 1.0f);
}

torch::Tensor HeunDiscreteScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                          const NoiseSource&) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const auto index = static_cast<std::size_t>(i);
    // Even indices start a step (predictor), odd ones finish it (corrector); a step index, not
    // hidden state, decides, so that img2img can start at any step.
    m_firstOrder = i % 2 == 0;
    if (!m_firstOrder && !m_prevDerivative.defined())
        throw std::logic_error("Heun: the corrector at step " + std::to_string(i) + " has no predictor before it");
    const float sigma = m_firstOrder ? m_sigmas[index] : m_sigmas[index - 1];
    const float sigmaNext = m_firstOrder ? m_sigmas[index + 1] : m_sigmas[index];
    // The sample the model saw is at sigma (predictor) or sigma_next (corrector).
    const float sigmaInput = m_firstOrder ? sigma : sigmaNext;
    if (m_config.prediction == PredictionType::Epsilon) {
        m_predOriginal = sample - sigmaInput * out;
    } else {
        // v-prediction (Salimans & Ho 2022) in sigma space.
        m_predOriginal =
            out * (-sigmaInput / std::sqrt(sigmaInput * sigmaInput + 1.0f)) + sample / (sigmaInput * sigmaInput + 1.0f);
    }
    if (m_firstOrder) {
        // Karras et al. 2022, Algorithm 1, lines 5-6: d_i = (x - D(x; sigma)) / sigma, Euler to sigma_next.
        m_prevDerivative = (sample - m_predOriginal) / sigma;
        m_dt = sigmaNext - sigma;
        m_prevSample = sample;
        return sample + m_prevDerivative * m_dt;
    }
    // Lines 7-8: the trapezoidal rule with the derivative at the predicted point.
    const auto derivative = ((sample - m_predOriginal) / sigmaNext + m_prevDerivative) / 2;
    auto prev = m_prevSample + derivative * m_dt;
    m_prevDerivative = torch::Tensor();
    m_prevSample = torch::Tensor();
    return prev;
}

torch::Tensor HeunDiscreteScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    return original + noise * m_sigmas[static_cast<std::size_t>(i)];
}

}  // namespace easel::inference
