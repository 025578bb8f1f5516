#pragma once
// UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework"), the bh2 variant with
// data prediction, as diffusers' UniPCMultistepScheduler(solver_order=2, lower_order_final=True).
// Each step first corrects the previous step's result with UniC, using the model output just
// evaluated at it (no extra evaluation), then predicts the next sample with UniP. The sample
// returned is the predictor's; the corrected one is what the next predictor starts from.

#include "inference/schedulers/scheduler.h"

namespace easel::inference {

class UniPCMultistepScheduler : public Scheduler {
public:
    explicit UniPCMultistepScheduler(SchedulerConfig config);
    void setTimesteps(int numInferenceSteps) override;
    torch::Tensor step(const torch::Tensor& modelOutput, int stepIndex, const torch::Tensor& sample,
                       const NoiseSource& noise) override;
    torch::Tensor addNoise(const torch::Tensor& original, const torch::Tensor& noise, int stepIndex) const override;

private:
    // UniP-p from sigma_i to sigma_{i+1} (Zhao et al., Algorithm 2) and UniC-p that corrects the
    // sample at sigma_i given the model output there (Algorithm 1).
    torch::Tensor predict(const torch::Tensor& sample, int order, int i) const;
    torch::Tensor correct(const torch::Tensor& modelOutput, const torch::Tensor& lastSample, int order, int i) const;

    bool m_bh2 = true;
    std::vector<torch::Tensor> m_modelOutputs;  // the last solverOrder x0 predictions, oldest first
    torch::Tensor m_lastSample;                 // the (corrected) sample the last predictor started from
    int m_lowerOrderCount = 0;
    int m_thisOrder = 1;  // the order of the last predictor, which its corrector reuses
};

}  // namespace easel::inference
