#pragma once
// Euler (Karras et al. 2022, Algorithm 2 with s_churn = 0) and Euler ancestral (k-diffusion's
// sample_euler_ancestral), as diffusers' EulerDiscreteScheduler / EulerAncestralDiscreteScheduler.

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class EulerDiscreteScheduler : public Scheduler {
public:
    EulerDiscreteScheduler(SchedulerConfig config, bool ancestral);
    void setTimesteps(int numInferenceSteps) override;
    float initNoiseSigma() const override;
    torch::Tensor scaleModelInput(const torch::Tensor& sample, int stepIndex) const override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

private:
    bool m_ancestral;
};

}  // namespace easel::inference
