#pragma once
// k-diffusion's DPM-Solver-2 sampler (Karras et al. 2022, Algorithm 1 with the midpoint taken at the
// log-mean sigma) and its ancestral form, as diffusers' KDPM2DiscreteScheduler and
// KDPM2AncestralDiscreteScheduler (A1111 "DPM2" and "DPM2 a"). Each step evaluates the model twice:
// at sigma_i (an Euler step to the midpoint) and at the midpoint (the step from sigma_i with that
// derivative), so timesteps() interleaves the midpoints' timesteps and there are 2n - 1 evaluations
// (the last step, to sigma = 0, is a single Euler step). The ancestral form steps to
// sigma_down and adds sigma_up of fresh noise in each second half.
//
// sigmas(), sigmasInterpol(), sigmasUp(), sigmasDown() are diffusers' interleaved tables of length
// 2n + 2, indexed by the evaluation index. Entries diffusers never reads hold NaN as in diffusers
// (sigmasInterpol()[0] of DPM2, the last three of sigmasUp()).

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class KDPM2DiscreteScheduler : public Scheduler {
public:
    KDPM2DiscreteScheduler(SchedulerConfig config, bool ancestral);
    void setTimesteps(int numInferenceSteps) override;
    int order() const override { return 2; }
    float initNoiseSigma() const override;
    torch::Tensor scaleModelInput(const torch::Tensor& sample, int stepIndex) const override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

    const std::vector<float>& sigmasInterpol() const { return m_sigmasInterpol; }
    const std::vector<float>& sigmasUp() const { return m_sigmasUp; }
    const std::vector<float>& sigmasDown() const { return m_sigmasDown; }

private:
    // The sigma the model input of evaluation i is at.
    float inputSigma(int i) const;

    bool m_ancestral;
    std::vector<float> m_sigmasInterpol, m_sigmasUp, m_sigmasDown;
    torch::Tensor m_firstHalfSample;  // the sample a step started from, between its two evaluations
};

}  // namespace easel::inference
