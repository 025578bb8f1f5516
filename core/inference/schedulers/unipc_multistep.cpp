#include "inference/schedulers/unipc_multistep.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace easel::inference {
namespace {

// The phi-function weights shared by UniP and UniC (diffusers' R and b): hh = -h for data
// prediction, B(h) = expm1(hh) for bh2 or hh for bh1, b_k = h_phi_k k! / B(h) with
// h_phi_1 = expm1(hh) / hh - 1 and h_phi_{k+1} = h_phi_k / hh - 1 / (k+1)!, in float32.
struct PhiWeights {
    float hh, hPhi1, bH;
    std::vector<float> b;
};

PhiWeights phiWeights(float h, int order, bool bh2) {
    PhiWeights w;
    w.hh = -h;
    w.hPhi1 = std::expm1(w.hh);
    w.bH = bh2 ? std::expm1(w.hh) : w.hh;
    float hPhiK = w.hPhi1 / w.hh - 1.0f;
    int factorial = 1;
    for (int k = 1; k <= order; ++k) {
        w.b.push_back(hPhiK * static_cast<float>(factorial) / w.bH);
        factorial *= k + 1;
        hPhiK = hPhiK / w.hh - 1.0f / static_cast<float>(factorial);
    }
    return w;
}

// Solves [[1, 1], [r, 1]] rho = b in float32 by Gaussian elimination with partial pivoting (what
// torch.linalg.solve's LU does for this 2x2 system).
std::array<float, 2> solve2(float r, float b0, float b1) {
    float a00 = 1.0f, a01 = 1.0f, a10 = r, a11 = 1.0f;
    if (std::abs(a10) > std::abs(a00)) {
        std::swap(a00, a10);
        std::swap(a01, a11);
        std::swap(b0, b1);
    }
    const float l = a10 * (1.0f / a00);
    const float u11 = a11 - l * a01;
    const float y1 = b1 - l * b0;
    const float x1 = y1 / u11;
    const float x0 = (b0 - a01 * x1) / a00;
    return {x0, x1};
}

}  // namespace

UniPCMultistepScheduler::UniPCMultistepScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {
    // UniPC has no algorithm_type (predict_x0 decides what it predicts): none is checked.
    requireSolverOptions(m_config, "UniPCMultistepScheduler", {}, {"bh2", "bh1"});
    m_bh2 = m_config.solverType != "bh1";
}

void UniPCMultistepScheduler::setTimesteps(int n) {
    auto schedule = solverSchedule(*this, m_config.spacing.value_or(TimestepSpacing::Linspace), n);
    m_sigmas = std::move(schedule.sigmas);
    m_sigmas.push_back(0.0f);  // final_sigmas_type = "zero"
    m_timesteps.assign(schedule.timesteps.begin(), schedule.timesteps.end());
    m_modelOutputs.assign(static_cast<std::size_t>(m_config.solverOrder), torch::Tensor());
    m_lastSample = torch::Tensor();
    m_lowerOrderCount = 0;
    m_thisOrder = 1;
}

torch::Tensor UniPCMultistepScheduler::predict(const torch::Tensor& x, int order, int i) const {
    const auto k = static_cast<std::size_t>(i);
    const auto t = alphaSigma(m_sigmas.at(k + 1));
    const auto s0 = alphaSigma(m_sigmas.at(k));
    const float h = t.lambda - s0.lambda;
    const auto w = phiWeights(h, order, m_bh2);
    const auto& m0 = m_modelOutputs.back();
    auto xt = (t.sigma / s0.sigma) * x - (t.alpha * w.hPhi1) * m0;
    if (order == 2) {
        // One earlier output: D1 = (m1 - m0) / r with r = (lambda_{i-1} - lambda_i) / h, weight 1/2.
        const auto s1 = alphaSigma(m_sigmas.at(k - 1));
        const float r = (s1.lambda - s0.lambda) / h;
        const auto d1 = (m_modelOutputs[m_modelOutputs.size() - 2] - m0) / r;
        xt = xt - (t.alpha * w.bH) * (0.5f * d1);
    }
    return xt;
}

// UniC rebuilds the last step from the sample it started from; the predictor's result enters only
// through the model output evaluated at it.
torch::Tensor UniPCMultistepScheduler::correct(const torch::Tensor& modelOutput, const torch::Tensor& lastSample,
                                               int order, int i) const {
    const auto k = static_cast<std::size_t>(i);
    const auto t = alphaSigma(m_sigmas.at(k));
    const auto s0 = alphaSigma(m_sigmas.at(k - 1));
    const float h = t.lambda - s0.lambda;
    const auto w = phiWeights(h, order, m_bh2);
    const auto& m0 = m_modelOutputs.back();
    const auto xt = (t.sigma / s0.sigma) * lastSample - (t.alpha * w.hPhi1) * m0;
    const auto d1t = modelOutput - m0;
    if (order == 1) return xt - (t.alpha * w.bH) * (0.5f * d1t);
    const auto s1 = alphaSigma(m_sigmas.at(k - 2));
    const float r = (s1.lambda - s0.lambda) / h;
    const auto d1 = (m_modelOutputs[m_modelOutputs.size() - 2] - m0) / r;
    const auto rho = solve2(r, w.b[0], w.b[1]);
    return xt - (t.alpha * w.bH) * (rho[0] * d1 + rho[1] * d1t);
}

torch::Tensor UniPCMultistepScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                            const NoiseSource&) {
    auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const auto s = alphaSigma(m_sigmas.at(static_cast<std::size_t>(i)));
    const torch::Tensor x0 = m_config.prediction == PredictionType::Epsilon ? (sample - s.sigma * out) / s.alpha
                                                                            : s.alpha * sample - s.sigma * out;
    m_predOriginal = x0;
    if (i > 0 && m_lastSample.defined()) sample = correct(x0, m_lastSample, m_thisOrder, i);
    m_modelOutputs.erase(m_modelOutputs.begin());
    m_modelOutputs.push_back(x0);
    int order = m_config.solverOrder;
    if (m_config.lowerOrderFinal) order = std::min(order, static_cast<int>(m_timesteps.size()) - i);
    m_thisOrder = std::min(order, m_lowerOrderCount + 1);
    m_lastSample = sample;
    auto prev = predict(sample, m_thisOrder, i);
    if (m_lowerOrderCount < m_config.solverOrder) ++m_lowerOrderCount;
    return prev;
}

torch::Tensor UniPCMultistepScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise,
                                                int i) const {
    const auto s = alphaSigma(m_sigmas.at(static_cast<std::size_t>(i)));
    return s.alpha * original + s.sigma * noise;
}

}  // namespace easel::inference
