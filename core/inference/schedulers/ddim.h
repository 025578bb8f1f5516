#pragma once
// DDIM (Song et al. 2020, eq. 12) with eta = 0, as diffusers' DDIMScheduler.

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class DDIMScheduler : public Scheduler {
public:
    explicit DDIMScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;
    float finalAlphaCumprod() const;

private:
    int m_numInferenceSteps = 0;
};

// x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise, for the DDPM-space schedulers (DDIM, DPM++, LCM).
torch::Tensor addNoiseDDPM(const torch::Tensor& alphasCumprod, const torch::Tensor& original,
                           const torch::Tensor& noise, int timestep);

}  // namespace easel::inference
