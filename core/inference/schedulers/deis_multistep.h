#pragma once
// DEIS (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential Integrator"), the
// log-rho multistep form, as diffusers' DEISMultistepScheduler(solver_order=2): the noise
// prediction is integrated exactly in rho = sigma / alpha against a Lagrange interpolant of the last
// two outputs. Unlike the DPM-Solver family it stops at the smallest training sigma (~0.029), not
// at 0, and for 15 or more steps its last step is second order too.

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class DEISMultistepScheduler : public Scheduler {
public:
    explicit DEISMultistepScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

private:
    std::vector<torch::Tensor> m_modelOutputs;  // the last solverOrder noise predictions, oldest first
    int m_lowerOrderCount = 0;
};

}  // namespace easel::inference
