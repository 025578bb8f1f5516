#pragma once
// Latent Consistency Model sampling (Luo et al. 2023) as diffusers' LCMScheduler: a consistency
// function with boundary-condition scalings, re-noised between steps.

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class LCMScheduler : public Scheduler {
public:
    explicit LCMScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;
};

}  // namespace easel::inference
