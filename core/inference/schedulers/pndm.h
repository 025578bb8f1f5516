#pragma once
// Pseudo numerical methods (Liu et al. 2022, "PNDM") in the PLMS form A1111 calls "PLMS", as
// diffusers' PNDMScheduler(skip_prk_steps=True): a linear multistep method on the DDIM transfer
// (eq. 9) with Adams-Bashforth weights that warm up over the first three steps. The first step is
// done twice (an improved-Euler warm-up), so timesteps() repeats its second entry and there are
// n + 1 model evaluations. PNDM counts its calls rather than reading the step index, as diffusers
// does; in img2img that makes the warm-up land on the next different timestep, which is what
// diffusers' pipeline runs (it gives PNDM no begin index).

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class PNDMScheduler : public Scheduler {
public:
    explicit PNDMScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

private:
    // Liu et al. 2022, eq. 9: x_t -> x_prevT with the noise estimate e.
    torch::Tensor transfer(const torch::Tensor& sample, int t, int prevT, const torch::Tensor& e) const;

    std::vector<float> m_alphas;  // alphas_cumprod as floats
    int m_numInferenceSteps = 0;
    int m_counter = 0;                 // calls to step() since setTimesteps
    std::vector<torch::Tensor> m_ets;  // the last (up to 4) model outputs kept for the multistep
    torch::Tensor m_warmupSample;      // the sample the first step started from
};

}  // namespace easel::inference
