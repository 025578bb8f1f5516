#include "inference/schedulers/lms_discrete.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace easel::inference {

LMSDiscreteScheduler::LMSDiscreteScheduler(SchedulerConfig config) : Scheduler(std::move(config)) {}

void LMSDiscreteScheduler::setTimesteps(int n) {
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    auto t = spacedTimesteps(spacing, m_config.numTrainTimesteps, n, m_config.stepsOffset);
    const auto train = trainingSigmas(m_alphasCumprod);
    std::vector<double> sigmas(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) sigmas[i] = interpolate(train, t[i]);
    if (m_config.useKarrasSigmas) {
        std::vector<double> logSigmas(train.size());
        for (std::size_t i = 0; i < train.size(); ++i) logSigmas[i] = std::log(train[i]);
        sigmas = karrasSigmas(sigmas.back(), sigmas.front(), n);
        for (std::size_t i = 0; i < sigmas.size(); ++i) t[i] = sigmaToT(sigmas[i], logSigmas);
    }
    m_timesteps.assign(t.begin(), t.end());
    m_sigmas.assign(sigmas.begin(), sigmas.end());
    m_sigmas.push_back(0.0f);
    m_derivatives.clear();
    m_coefficients.clear();
}

float LMSDiscreteScheduler::initNoiseSigma() const {
    const float maxSigma = *std::max_element(m_sigmas.begin(), m_sigmas.end());
    const auto spacing = m_config.spacing.value_or(TimestepSpacing::Linspace);
    if (spacing == TimestepSpacing::Linspace || spacing == TimestepSpacing::Trailing) return maxSigma;
    return std::sqrt(maxSigma * maxSigma + 1.0f);
}

torch::Tensor LMSDiscreteScheduler::scaleModelInput(const torch::Tensor& sample, int stepIndex) const {
    const float sigma = m_sigmas.at(static_cast<std::size_t>(stepIndex));
    return sample / std::sqrt(sigma * sigma + 1.0f);
}

double LMSDiscreteScheduler::coefficient(int order, int i, int basis) const {
    // The Lagrange basis polynomial of node sigma_{i-basis} over the nodes sigma_i ... sigma_{i-order+1}
    // has degree order - 1 <= 3, so 3-point Gauss-Legendre integrates it exactly. (diffusers uses
    // scipy's adaptive quadrature, with the integrand in float32: its weights differ from these by up
    // to about 3e-7 relative.)
    const auto sigma = [&](int k) { return static_cast<double>(m_sigmas.at(static_cast<std::size_t>(i - k))); };
    const auto basisAt = [&](double tau) {
        double prod = 1.0;
        for (int k = 0; k < order; ++k) {
            if (k != basis) prod *= (tau - sigma(k)) / (sigma(basis) - sigma(k));
        }
        return prod;
    };
    const double a = m_sigmas.at(static_cast<std::size_t>(i));
    const double b = m_sigmas.at(static_cast<std::size_t>(i) + 1);
    const double mid = (a + b) / 2, half = (b - a) / 2;
    constexpr std::array<double, 3> kNodes{-0.7745966692414834, 0.0, 0.7745966692414834};  // +-sqrt(3/5)
    constexpr std::array<double, 3> kWeights{5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0};
    double sum = 0;
    for (std::size_t q = 0; q < kNodes.size(); ++q) sum += kWeights[q] * basisAt(mid + half * kNodes[q]);
    return sum * half;
}

torch::Tensor LMSDiscreteScheduler::step(const torch::Tensor& modelOutput, int i, const torch::Tensor& sampleIn,
                                         const NoiseSource&) {
    const auto sample = sampleIn.to(torch::kFloat32);
    const auto out = modelOutput.to(torch::kFloat32);
    const float sigma = m_sigmas.at(static_cast<std::size_t>(i));
    if (m_config.prediction == PredictionType::Epsilon) {
        m_predOriginal = sample - sigma * out;
    } else {
        // v-prediction (Salimans & Ho 2022) in sigma space.
        m_predOriginal = out * (-sigma / std::sqrt(sigma * sigma + 1.0f)) + sample / (sigma * sigma + 1.0f);
    }
    // The ODE derivative dx/dsigma = (x - x0) / sigma (Karras et al. 2022, eq. 4).
    m_derivatives.push_back((sample - m_predOriginal) / sigma);
    if (m_derivatives.size() > static_cast<std::size_t>(kMaxOrder)) m_derivatives.erase(m_derivatives.begin());
    // The order follows the step index, not the derivatives held (diffusers); in img2img the first
    // steps thus use the leading weights of a higher-order rule.
    const int order = std::min(i + 1, kMaxOrder);
    m_coefficients.clear();
    for (int basis = 0; basis < order; ++basis) m_coefficients.push_back(coefficient(order, i, basis));
    const std::size_t used = std::min(m_coefficients.size(), m_derivatives.size());
    torch::Tensor sum;
    for (std::size_t k = 0; k < used; ++k) {
        const auto term = m_coefficients[k] * m_derivatives[m_derivatives.size() - 1 - k];
        sum = sum.defined() ? sum + term : term;
    }
    return sample + sum;
}

torch::Tensor LMSDiscreteScheduler::addNoise(const torch::Tensor& original, const torch::Tensor& noise, int i) const {
    return original + noise * m_sigmas.at(static_cast<std::size_t>(i));
}

}  // namespace easel::inference
