// Heun (HeunDiscreteScheduler) has no reference trajectory, so it is checked against mathematics.
// For Gaussian data x0 ~ N(0, s^2) the ideal denoiser is D(x; sigma) = s^2 / (s^2 + sigma^2) x, so the
// model's epsilon (x - D) / sigma = sigma x / (s^2 + sigma^2) and the probability-flow ODE
// dx/dsigma = epsilon (Karras et al. 2022, eq. 4 with sigma(t) = t) has the closed form
// x(sigma) = x(sigma_0) sqrt((s^2 + sigma^2) / (s^2 + sigma_0^2)).

#include <gtest/gtest.h>

#include <cmath>

#include "inference/schedulers/euler_discrete.h"
#include "inference/schedulers/heun_discrete.h"

using namespace easel::inference;

namespace {

constexpr double kDataStd = 1.0;

double exactRatio(double sigma, double sigma0) {
    return std::sqrt((kDataStd * kDataStd + sigma * sigma) / (kDataStd * kDataStd + sigma0 * sigma0));
}

// The model's output at evaluation i, whose input sample sits at noise level sigmas()[i].
torch::Tensor idealModel(const torch::Tensor& x, double sigma, PredictionType prediction) {
    const double s2 = kDataStd * kDataStd;
    if (prediction == PredictionType::Epsilon) return x * (sigma / (s2 + sigma * sigma));
    // v = (x / (sigma^2 + 1) - D) sqrt(sigma^2 + 1) / sigma inverts the v -> x0 formula.
    const auto denoised = x * (s2 / (s2 + sigma * sigma));
    return (x / (sigma * sigma + 1) - denoised) * (std::sqrt(sigma * sigma + 1) / sigma);
}

struct Run {
    double error = 0;      // max abs error at the last non-zero sigma
    torch::Tensor sample;  // the sample there
    int evaluations = 0;
};

// Runs every evaluation but the final step to sigma = 0 (plain Euler in both schedulers), whose
// error does not shrink with more steps because sigma_min is fixed.
Run solve(Scheduler& scheduler, int steps, PredictionType prediction = PredictionType::Epsilon) {
    scheduler.setTimesteps(steps);
    const auto noise = torch::linspace(-2.0, 2.0, 16, torch::kFloat32).view({1, 4, 2, 2});
    auto x = noise * scheduler.initNoiseSigma();
    const auto& sigmas = scheduler.sigmas();
    const int evaluations = static_cast<int>(scheduler.timesteps().size()) - 1;
    for (int i = 0; i < evaluations; ++i) {
        x = scheduler.step(idealModel(x, sigmas[static_cast<std::size_t>(i)], prediction), i, x, {});
    }
    const double lastSigma = sigmas[sigmas.size() - 2];
    const auto exact = noise.to(torch::kFloat64) * scheduler.initNoiseSigma() * exactRatio(lastSigma, sigmas[0]);
    return {(x.to(torch::kFloat64) - exact).abs().max().item<double>(), x, evaluations};
}

SchedulerConfig karras() {
    SchedulerConfig c;
    c.useKarrasSigmas = true;
    return c;
}

}  // namespace

TEST(HeunScheduler, TimestepsAndSigmasFollowDiffusers) {
    SchedulerConfig config;
    HeunDiscreteScheduler heun(config);
    EulerDiscreteScheduler euler(config, false);
    const int n = 10;
    heun.setTimesteps(n);
    euler.setTimesteps(n);
    const auto& t = heun.timesteps();
    const auto& s = heun.sigmas();
    // timesteps = cat([t[:1], t[1:].repeat_interleave(2)]); sigmas likewise, then the final 0.
    ASSERT_EQ(t.size(), static_cast<std::size_t>(2 * n - 1));
    ASSERT_EQ(s.size(), static_cast<std::size_t>(2 * n));
    EXPECT_EQ(t[0], euler.timesteps()[0]);
    EXPECT_EQ(s[0], euler.sigmas()[0]);
    for (int k = 1; k < n; ++k) {
        const auto a = static_cast<std::size_t>(2 * k - 1), b = static_cast<std::size_t>(2 * k);
        EXPECT_EQ(t[a], euler.timesteps()[static_cast<std::size_t>(k)]);
        EXPECT_EQ(t[b], t[a]);
        EXPECT_EQ(s[a], euler.sigmas()[static_cast<std::size_t>(k)]);
        EXPECT_EQ(s[b], s[a]);
    }
    EXPECT_EQ(s.back(), 0.0f);
    EXPECT_EQ(t.front(), 999.0f);  // linspace spacing, the diffusers default for Heun
    EXPECT_EQ(t.back(), 0.0f);
    EXPECT_EQ(heun.initNoiseSigma(), euler.initNoiseSigma());
    EXPECT_EQ(heun.order(), 2);
    EXPECT_EQ(euler.order(), 1);
    EXPECT_EQ(parseSchedulerName("Heun").kind, SchedulerKind::Heun);
    EXPECT_EQ(parseSchedulerName("HeunDiscreteScheduler").kind, SchedulerKind::Heun);
    EXPECT_TRUE(parseSchedulerName("Heun Karras").karras);
    EXPECT_NE(dynamic_cast<HeunDiscreteScheduler*>(makeScheduler(SchedulerKind::Heun, config).get()), nullptr);
}

TEST(HeunScheduler, IsSecondOrderAndBeatsEuler) {
    double previous = 0;
    // From 16 steps on the error is in its asymptotic regime (ratios 5.0, 4.4, 4.2, ... -> 4); at 8
    // steps Heun is still 2x better than Euler.
    for (const int n : {16, 32, 64, 128}) {
        HeunDiscreteScheduler heun(karras());
        EulerDiscreteScheduler euler(karras(), false);
        const auto h = solve(heun, n);
        const auto e = solve(euler, n);
        EulerDiscreteScheduler eulerSameCost(karras(), false);
        const auto e2 = solve(eulerSameCost, 2 * n);
        std::printf("steps %2d: Heun error %.3e (%d evaluations), Euler %.3e, Euler with 2n steps %.3e\n", n, h.error,
                    h.evaluations, e.error, e2.error);
        EXPECT_LT(h.error, e.error / 4) << n;
        EXPECT_LT(h.error, e2.error) << n;  // better even at the same number of model evaluations
        if (previous > 0) {
            const double ratio = previous / h.error;
            std::printf("          Heun error ratio %.2f\n", ratio);
            EXPECT_GT(ratio, 3.0) << n;  // second order: ~4x when the steps double
            EXPECT_LT(ratio, 5.5) << n;
        }
        previous = h.error;
    }
}

TEST(HeunScheduler, DefaultScheduleConvergesToo) {
    // The diffusers (linspace) sigmas interpolate a table, so the ratio is less regular; the error
    // must still fall much faster than Euler's.
    HeunDiscreteScheduler h20(SchedulerConfig{}), h40(SchedulerConfig{});
    EulerDiscreteScheduler e20(SchedulerConfig{}, false), e40(SchedulerConfig{}, false);
    const double heunRatio = solve(h20, 20).error / solve(h40, 40).error;
    const double eulerRatio = solve(e20, 20).error / solve(e40, 40).error;
    std::printf("error ratio 20 -> 40 steps: Heun %.2f, Euler %.2f\n", heunRatio, eulerRatio);
    EXPECT_GT(heunRatio, 3.0);
    EXPECT_LT(eulerRatio, 2.6);
}

TEST(HeunScheduler, VPredictionFollowsTheSameTrajectory) {
    HeunDiscreteScheduler eps(karras());
    auto vConfig = karras();
    vConfig.prediction = PredictionType::VPrediction;
    HeunDiscreteScheduler v(vConfig);
    const auto a = solve(eps, 16, PredictionType::Epsilon);
    const auto b = solve(v, 16, PredictionType::VPrediction);
    EXPECT_LT((a.sample - b.sample).abs().max().item<double>(), 1e-4);
}

TEST(HeunScheduler, CorrectorWithoutPredictorIsAnError) {
    HeunDiscreteScheduler heun(SchedulerConfig{});
    heun.setTimesteps(5);
    const auto x = torch::zeros({1, 4, 2, 2});
    EXPECT_THROW(heun.step(x, 1, x, {}), std::logic_error);
}
