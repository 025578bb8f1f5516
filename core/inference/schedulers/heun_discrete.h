#pragma once
// Heun's second-order sampler (Karras et al. 2022, Algorithm 1 with s_churn = 0), as diffusers'
// HeunDiscreteScheduler: each step evaluates the model twice, first at sigma_i (an Euler predictor
// to sigma_{i+1}), then at sigma_{i+1} (the trapezoidal corrector). timesteps() therefore lists
// t_0, t_1, t_1, ..., t_{n-1}, t_{n-1} (2n - 1 evaluations); the last step, to sigma = 0, is a plain
// Euler step because the corrector would divide by sigma = 0.

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class HeunDiscreteScheduler : public Scheduler {
public:
    explicit HeunDiscreteScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    int order() const override { return 2; }
    float initNoiseSigma() const override;
    torch::Tensor scaleModelInput(const torch::Tensor& sample, int stepIndex) const override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

private:
    // Between the two evaluations of a step: the predictor's derivative, step size and start point.
    torch::Tensor m_prevDerivative;
    float m_dt = 0;
    torch::Tensor m_prevSample;
    bool m_firstOrder = true;
};

}  // namespace easel::inference
