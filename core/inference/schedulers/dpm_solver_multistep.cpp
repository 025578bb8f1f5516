#include "inference/schedulers/dpm_solver_multistep.h"

#include <cmath>

namespace easel::inference {

DPMSolverMultistepScheduler::DPMSolverMultistepScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    requireSolverOptions(m_config, "DPMSolverMultistepScheduler", {"dpmsolver++", "sde-dpmsolver++"}, {"midpoint"});
    m_sde = m_config.algorithmType == "sde-dpmsolver++";
}

void DPMSolverMultistepScheduler::setTimesteps(int n) {
    auto schedule = solverSchedule(*this, m_config.spacing.value_or(TimestepSpacing::Linspace), n);
    m_sigmas = std::move(schedule.sigmas);
    m_sigmas.push_back(0.0f);  // final_sigmas_type = "zero"
    m_timesteps.assign(schedule.timesteps.begin(), schedule.timesteps.end());
    m_previousX0 = torch::Tensor();
    m_lowerOrderCount = 0;
}

torch::Tensor DPMSolverMultistepScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                                const NoiseSource& noiseSource) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const auto s0 = alphaSigma(m_sigmas[static_cast<std::size_t>(i)]);
    // Convert the model output to a data prediction x0 (the "++" of DPM-Solver++).
    torch::Tensor x0 = m_config.prediction == PredictionType::Epsilon ? (sample - s0.sigma * out) / s0.alpha
                                                                      : s0.alpha * sample - s0.sigma * out;
    m_predOriginal = x0;
    // diffusers draws the SDE noise at every step, the last one included, so the draws stay in step.
    const torch::Tensor noise = m_sde ? noiseSource(sample, i) : torch::Tensor();
    const float sigmaNext = m_sigmas[static_cast<std::size_t>(i) + 1];
    const bool last = i == static_cast<int>(m_timesteps.size()) - 1;
    const bool firstOrder = m_config.solverOrder == 1 || m_lowerOrderCount < 1 || last;
    torch::Tensor prev;
    if (sigmaNext == 0.0f) {
        // lambda_t = +inf: exp(-h) = 0, and both first-order updates return x0 exactly.
        prev = x0;
    } else {
        const auto t = alphaSigma(sigmaNext);
        const float h = t.lambda - s0.lambda;
        // The midpoint correction D1 = (x0 - x0_prev) / r0 with r0 = h_prev / h (Algorithm 2, line 8).
        torch::Tensor d1;
        if (!firstOrder) {
            const auto s1 = alphaSigma(m_sigmas[static_cast<std::size_t>(i) - 1]);
            const float r0 = (s0.lambda - s1.lambda) / h;
            d1 = (1.0f / r0) * (x0 - m_previousX0);
        }
        if (m_sde) {
            // Lu et al. 2022, eq. (SDE-DPM-Solver++(2M)): the data term decays with exp(-2h) and the
            // noise restores the variance sigma_t^2 (1 - exp(-2h)).
            const float decay = 1.0f - std::exp(-2.0f * h);
            prev = ((t.sigma / s0.sigma) * std::exp(-h)) * sample + (t.alpha * decay) * x0;
            if (d1.defined()) prev = prev + (0.5f * (t.alpha * decay)) * d1;
            prev = prev + (t.sigma * std::sqrt(1.0f - std::exp(-2.0f * h))) * noise;
        } else {
            const float expm = std::exp(-h) - 1.0f;
            prev = (t.sigma / s0.sigma) * sample - (t.alpha * expm) * x0;
            if (d1.defined()) prev = prev - (0.5f * (t.alpha * expm)) * d1;
        }
    }
    m_previousX0 = x0;
    if (m_lowerOrderCount < 2) ++m_lowerOrderCount;
    return prev;
}

torch::Tensor DPMSolverMultistepScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise,
                                                    int i) const {
    const auto s = alphaSigma(m_sigmas[static_cast<std::size_t>(i)]);
    return s.alpha * original + s.sigma * noise;
}

}  // namespace easel::inference
