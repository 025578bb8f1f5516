#pragma once
// The linear multistep sampler of k-diffusion (Karras et al. 2022's "LMS" baseline) as diffusers'
// LMSDiscreteScheduler: Adams-Bashforth in sigma over the last (up to 4) derivatives, whose weights
// are the integrals of the Lagrange basis polynomials over [sigma_i, sigma_{i+1}].

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class LMSDiscreteScheduler : public Scheduler {
public:
    static constexpr int kMaxOrder = 4;  // diffusers' step(order=4)

    explicit LMSDiscreteScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    float initNoiseSigma() const override;
    torch::Tensor scaleModelInput(const torch::Tensor& sample, int stepIndex) const override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

    // The multistep weights of the last step, newest derivative first. Their count is
    // min(stepIndex + 1, 4) even when fewer derivatives exist yet (img2img), as in diffusers, which
    // then uses only the first ones.
    const std::vector<double>& lastCoefficients() const { return m_coefficients; }
    // The weight of derivative `basis` (0 = newest) of an order-`order` step at index i.
    double coefficient(int order, int i, int basis) const;

private:
    std::vector<torch::Tensor> m_derivatives;  // oldest first
    std::vector<double> m_coefficients;
};

}  // namespace easel::inference
