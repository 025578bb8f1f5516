#pragma once
// The ancestral sampler of Ho et al. 2020 ("DDPM", eq. 6-7) on a subsequence of timesteps, as
// diffusers' DDPMScheduler(variance_type="fixed_small", clip_sample=False): the posterior mean
// q(x_prev | x_t, x0) plus its standard deviation times fresh noise at every step with t > 0.

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class DDPMScheduler : public Scheduler {
public:
    explicit DDPMScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

private:
    std::vector<float> m_alphas;  // alphas_cumprod as floats
};

}  // namespace easel::inference
