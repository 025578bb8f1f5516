#include "inference/schedulers/pndm.h"

#include <cmath>
#include <stdexcept>

#include "inference/schedulers/ddim.h"

namespace easel::inference {

PNDMScheduler::PNDMScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    requireOption(m_config.skipPrkSteps, "PNDMScheduler", "skip_prk_steps=False (the Runge-Kutta warm-up)");
    const auto a = m_alphasCumprod.contiguous();
    m_alphas.assign(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
}

void PNDMScheduler::setTimesteps(int n) {
    m_numInferenceSteps = n;
    const auto t = spacedTimesteps(m_config.spacing.value_or(TimestepSpacing::Leading), m_config.numTrainTimesteps, n,
                                   m_config.stepsOffset);
    // diffusers: concatenate([ts[:-1], ts[-2:-1], ts[-1:]])[::-1] on the ascending list, i.e. the
    // descending list with its second entry repeated.
    m_timesteps.clear();
    for (std::size_t i = 0; i < t.size(); ++i) {
        m_timesteps.push_back(static_cast<float>(std::nearbyint(t[i])));
        if (i == 1) m_timesteps.push_back(m_timesteps.back());
    }
    m_sigmas.clear();
    m_counter = 0;
    m_ets.clear();
    m_warmupSample = torch::Tensor();
}

torch::Tensor PNDMScheduler::transfer(const torch::Tensor& sample, int t, int prevT, const torch::Tensor& e) const {
    const float alpha = m_alphas.at(static_cast<std::size_t>(t));
    const float alphaPrev =
        prevT >= 0 ? m_alphas.at(static_cast<std::size_t>(prevT)) : (m_config.setAlphaToOne ? 1.0f : m_alphas.front());
    const float beta = 1.0f - alpha;
    const float betaPrev = 1.0f - alphaPrev;
    auto eps = e;
    if (m_config.prediction == PredictionType::VPrediction) eps = std::sqrt(alpha) * e + std::sqrt(beta) * sample;
    const float sampleCoeff = std::sqrt(alphaPrev / alpha);
    const float denominator = alpha * std::sqrt(betaPrev) + std::sqrt(alpha * beta * alphaPrev);
    return sampleCoeff * sample - (alphaPrev - alpha) * eps / denominator;
}

torch::Tensor PNDMScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                  const NoiseSource&) {
    if (m_numInferenceSteps == 0) throw std::logic_error("PNDM: step() before setTimesteps()");
    auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const int ratio = m_config.numTrainTimesteps / m_numInferenceSteps;
    int t = static_cast<int>(m_timesteps.at(static_cast<std::size_t>(i)));
    int prevT = t - ratio;
    if (m_counter != 1) {
        if (m_ets.size() > 3) m_ets.erase(m_ets.begin());
        m_ets.push_back(out);
    } else {
        // The second call re-does the first step t -> t - ratio.
        prevT = t;
        t = t + ratio;
    }
    torch::Tensor e;
    const std::size_t k = m_ets.size();
    if (k == 1 && m_counter == 0) {
        e = out;
        m_warmupSample = sample;
    } else if (k == 1 && m_counter == 1) {
        // Improved Euler: the mean of the outputs at both ends, from the kept start sample.
        e = (out + m_ets.back()) / 2;
        sample = m_warmupSample;
        m_warmupSample = torch::Tensor();
    } else if (k == 2) {
        e = (3 * m_ets[1] - m_ets[0]) / 2;
    } else if (k == 3) {
        e = (23 * m_ets[2] - 16 * m_ets[1] + 5 * m_ets[0]) / 12;
    } else {
        e = (1.0 / 24) * (55 * m_ets[3] - 59 * m_ets[2] + 37 * m_ets[1] - 9 * m_ets[0]);
    }
    ++m_counter;
    return transfer(sample, t, prevT, e);
}

torch::Tensor PNDMScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    return addNoiseDDPM(m_alphasCumprod, original, noise,
                        static_cast<int>(m_timesteps.at(static_cast<std::size_t>(i))));
}

}  // namespace easel::inference
