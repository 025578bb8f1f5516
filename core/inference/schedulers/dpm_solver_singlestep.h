#pragma once
// Singlestep DPM-Solver++ (Lu et al. 2022, "DPM-Solver++", Algorithm 1, midpoint form) as
// diffusers' DPMSolverSinglestepScheduler with solver_order 2: steps alternate between order 1 and
// order 2, and an order-2 step restarts from the sample kept at the order-1 step before it, using
// both x0 predictions. With final_sigmas_type "zero" diffusers switches lower_order_final on, so the
// last step is first order. A1111 has no name for it (its "DPM++ SDE" is another sampler).

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class DPMSolverSinglestepScheduler : public Scheduler {
public:
    explicit DPMSolverSinglestepScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

    // The solver order of each step (diffusers' order_list).
    const std::vector<int>& orderList() const { return m_orderList; }

private:
    std::vector<int> m_orderList;
    std::vector<torch::Tensor> m_modelOutputs;  // the last solverOrder x0 predictions, oldest first
    torch::Tensor m_stepStart;                  // the sample of the last order-1 step
};

}  // namespace easel::inference
