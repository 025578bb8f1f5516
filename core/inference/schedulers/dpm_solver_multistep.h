#pragma once
// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2, midpoint form) as diffusers'
// DPMSolverMultistepScheduler(solver_order=2, lower_order_final=True, final_sigmas_type="zero"),
// with optional Karras sigmas, in both of its data-prediction forms: algorithm_type "dpmsolver++"
// (the ODE solver, A1111 "DPM++ 2M") and "sde-dpmsolver++" (the SDE solver, A1111 "DPM++ 2M SDE",
// which draws a noise tensor at every step, the last one included).

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class DPMSolverMultistepScheduler : public Scheduler {
public:
    explicit DPMSolverMultistepScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;
    bool stochastic() const { return m_sde; }

private:
    bool m_sde = false;
    torch::Tensor m_previousX0;
    int m_lowerOrderCount = 0;
};

}  // namespace easel::inference
