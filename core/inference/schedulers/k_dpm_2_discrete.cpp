#include "inference/schedulers/k_dpm_2_discrete.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace easel::inference {
namespace {

// diffusers' cat([x[:1], x[1:].repeat_interleave(2), x[-1:]]): entry 2k holds x_k (k >= 1 twice).
std::vector<float> interleaved(const torch::Tensor& x) {
    const auto c = x.contiguous();
    const float* p = c.data_ptr<float>();
    const auto n = static_cast<std::size_t>(c.numel());
    std::vector<float> out{p[0]};
    for (std::size_t k = 1; k < n; ++k) out.insert(out.end(), 2, p[k]);
    out.push_back(p[n - 1]);
    return out;
}

}  // namespace

KDPM2DiscreteScheduler::KDPM2DiscreteScheduler(SchedulerConfig config, bool ancestral)
    : Scheduler(std::move(config)), m_ancestral(ancestral) {}

void KDPM2DiscreteScheduler::setTimesteps(int n) {
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    auto t = spacedTimesteps(spacing, m_config.numTrainTimesteps, n, m_config.stepsOffset);
    const auto train = trainingSigmas(m_alphasCumprod);
    std::vector<double> logSigmas(train.size());
    for (std::size_t i = 0; i < train.size(); ++i) logSigmas[i] = std::log(train[i]);
    std::vector<double> s(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) s[i] = interpolate(train, t[i]);
    if (m_config.useKarrasSigmas) {
        s = karrasSigmas(s.back(), s.front(), n);
        for (std::size_t i = 0; i < s.size(); ++i) t[i] = std::nearbyint(sigmaToT(s[i], logSigmas));
    }
    std::vector<float> s32(s.begin(), s.end());
    s32.push_back(0.0f);
    // The tables in float32 torch arithmetic, as diffusers builds them.
    const auto sigmas = torch::tensor(s32);
    torch::Tensor interpol;
    if (m_ancestral) {
        auto next = sigmas.roll(-1);
        next[-1] = 0.0f;
        const auto up = (next.pow(2) * (sigmas.pow(2) - next.pow(2)) / sigmas.pow(2)).sqrt();
        auto down = (next.pow(2) - up.pow(2)).sqrt();
        down[-1] = 0.0f;
        // The midpoint between sigma_i and sigma_down in log sigma; the last step has none.
        interpol = sigmas.log().lerp(down.log(), 0.5).exp();
        interpol.slice(0, -2).fill_(0.0f);
        m_sigmasUp = interleaved(up);
        m_sigmasDown = interleaved(down);
    } else {
        // The log-midpoint sqrt(sigma_i sigma_{i-1}), stored at i.
        interpol = sigmas.log().lerp(sigmas.roll(1).log(), 0.5).exp();
        m_sigmasUp.clear();
        m_sigmasDown.clear();
    }
    m_sigmas = interleaved(sigmas);
    m_sigmasInterpol = interleaved(interpol);

    // [t_0, then per step the midpoint's timestep and the next main timestep].
    const auto ip = interpol.contiguous();
    const float* interp = ip.data_ptr<float>();
    const std::size_t firstMid = m_ancestral ? 0 : 1;
    m_timesteps.assign(1, static_cast<float>(t.front()));
    for (std::size_t k = 1; k < t.size(); ++k) {
        m_timesteps.push_back(static_cast<float>(sigmaToT(interp[firstMid + k - 1], logSigmas)));
        m_timesteps.push_back(static_cast<float>(t[k]));
    }
    m_firstHalfSample = torch::Tensor();
}

float KDPM2DiscreteScheduler::initNoiseSigma() const {
    const float maxSigma = *std::max_element(m_sigmas.begin(), m_sigmas.end());
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    if (spacing == TimestepSpacing::Linspace || spacing == TimestepSpacing::Trailing) return maxSigma;
    return std::sqrt(maxSigma * maxSigma + 1.0f);
}

float KDPM2DiscreteScheduler::inputSigma(int i) const {
    const auto k = static_cast<std::size_t>(i);
    // Even evaluations start a step at sigma_i; odd ones are at the midpoint, which the ancestral
    // tables keep at the step's first index.
    if (i % 2 == 0) return m_sigmas.at(k);
    return m_ancestral ? m_sigmasInterpol.at(k - 1) : m_sigmasInterpol.at(k);
}

torch::Tensor KDPM2DiscreteScheduler::scaleModelInput(const torch::Tensor& sample, int stepIndex) const {
    const float sigma = inputSigma(stepIndex);
    return sample / std::sqrt(sigma * sigma + 1.0f);
}

torch::Tensor KDPM2DiscreteScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                           const NoiseSource& noise) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const auto k = static_cast<std::size_t>(i);
    // The step index, not hidden state, says which half this is, so that img2img can start anywhere
    // even; diffusers' img2img begin index is always even for this order-2 scheduler.
    const bool firstHalf = i % 2 == 0;
    if (!firstHalf && !m_firstHalfSample.defined())
        throw std::logic_error("DPM2: the second half at step " + std::to_string(i) + " has no first half before it");
    const float sigma = firstHalf ? m_sigmas.at(k) : m_sigmas.at(k - 1);
    const float sigmaInput = inputSigma(i);
    if (m_config.prediction == PredictionType::Epsilon) {
        m_predOriginal = sample - sigmaInput * out;
    } else {
        // v-prediction (Salimans & Ho 2022) in sigma space.
        m_predOriginal =
            out * (-sigmaInput / std::sqrt(sigmaInput * sigmaInput + 1.0f)) + sample / (sigmaInput * sigmaInput + 1.0f);
    }
    if (firstHalf) {
        // Euler to the midpoint.
        const float midpoint = m_ancestral ? m_sigmasInterpol.at(k) : m_sigmasInterpol.at(k + 1);
        const auto derivative = (sample - m_predOriginal) / sigma;
        m_firstHalfSample = sample;
        return sample + derivative * (midpoint - sigma);
    }
    // The whole step from sigma_i with the midpoint's derivative.
    const auto derivative = (sample - m_predOriginal) / sigmaInput;
    const float target = m_ancestral ? m_sigmasDown.at(k - 1) : m_sigmas.at(k);
    auto prev = m_firstHalfSample + derivative * (target - sigma);
    m_firstHalfSample = torch::Tensor();
    if (m_ancestral) prev = prev + noise(prev, i) * m_sigmasUp.at(k - 1);
    return prev;
}

torch::Tensor KDPM2DiscreteScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    return original + noise * m_sigmas.at(static_cast<std::size_t>(i));
}

}  // namespace easel::inference
