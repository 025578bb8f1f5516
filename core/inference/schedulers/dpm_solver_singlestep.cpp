#include "inference/schedulers/dpm_solver_singlestep.h"

#include <cmath>

namespace easel::inference {

DPMSolverSinglestepScheduler::DPMSolverSinglestepScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    requireSolverOptions(m_config, "DPMSolverSinglestepScheduler", {"dpmsolver++"}, {"midpoint"});
}

void DPMSolverSinglestepScheduler::setTimesteps(int n) {
    // The class has no timestep_spacing: always linspace.
    auto schedule = solverSchedule(*this, TimestepSpacing::Linspace, n);
    m_sigmas = std::move(schedule.sigmas);
    m_sigmas.push_back(0.0f);  // final_sigmas_type = "zero"
    m_timesteps.assign(schedule.timesteps.begin(), schedule.timesteps.end());
    // get_order_list with lower_order_final (forced on by the zero final sigma): 1, 2, 1, 2, ...
    // ending in a first-order step.
    m_orderList.clear();
    if (m_config.solverOrder == 1) {
        m_orderList.assign(static_cast<std::size_t>(n), 1);
    } else {
        for (int i = 0; i < n / 2 - (n % 2 == 0 ? 1 : 0); ++i) m_orderList.insert(m_orderList.end(), {1, 2});
        if (n % 2 == 0) {
            m_orderList.insert(m_orderList.end(), {1, 1});
        } else {
            m_orderList.push_back(1);
        }
    }
    m_orderList.back() = 1;
    m_modelOutputs.assign(static_cast<std::size_t>(m_config.solverOrder), torch::Tensor());
    m_stepStart = torch::Tensor();
}

torch::Tensor DPMSolverSinglestepScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                                 const NoiseSource&) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const auto k = static_cast<std::size_t>(i);
    const auto s0 = alphaSigma(m_sigmas.at(k));
    const torch::Tensor x0 = m_config.prediction == PredictionType::Epsilon ? (sample - s0.sigma * out) / s0.alpha
                                                                            : s0.alpha * sample - s0.sigma * out;
    m_predOriginal = x0;
    m_modelOutputs.erase(m_modelOutputs.begin());
    m_modelOutputs.push_back(x0);
    int order = m_orderList.at(k);
    // Not enough history (the first step, or img2img starting on an order-2 step): lower the order.
    while (order > 1 && !m_modelOutputs[m_modelOutputs.size() - static_cast<std::size_t>(order)].defined()) --order;
    if (order == 1) m_stepStart = sample;

    const auto t = alphaSigma(m_sigmas.at(k + 1));
    if (order == 1) {
        // DDIM-like first-order update from sigma_i (eq. 5 of DPM-Solver++); sigma_t = 0 gives x0.
        const float h = t.lambda - s0.lambda;
        return (t.sigma / s0.sigma) * m_stepStart - (t.alpha * (std::exp(-h) - 1.0f)) * x0;
    }
    // Second order from sigma_{i-1}, where the step started, with the midpoint sigma_i.
    const auto s1 = alphaSigma(m_sigmas.at(k - 1));
    const auto& m0 = m_modelOutputs.back();
    const auto& m1 = m_modelOutputs[m_modelOutputs.size() - 2];
    const float h = t.lambda - s1.lambda;
    const float r0 = (s0.lambda - s1.lambda) / h;
    const auto d1 = (1.0f / r0) * (m0 - m1);
    const float expm = std::exp(-h) - 1.0f;
    return (t.sigma / s1.sigma) * m_stepStart - (t.alpha * expm) * m1 - (0.5f * (t.alpha * expm)) * d1;
}

torch::Tensor DPMSolverSinglestepScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise,
                                                     int i) const {
    const auto s = alphaSigma(m_sigmas.at(static_cast<std::size_t>(i)));
    return s.alpha * original + s.sigma * noise;
}

}  // namespace easel::inference
