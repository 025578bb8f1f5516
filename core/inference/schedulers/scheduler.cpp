#include "inference/schedulers/scheduler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string_view>

#include "common/sampler_names.h"

namespace easel::inference {

Scheduler::Scheduler(SchedulerConfig config) : m_config(std::move(config)) {
    // diffusers: betas = linspace(sqrt(b0), sqrt(b1), T) ** 2 ("scaled_linear"), in float32.
    torch::Tensor betas;
    if (m_config.scaledLinear) {
        betas = torch::linspace(std::sqrt(m_config.betaStart), std::sqrt(m_config.betaEnd), m_config.numTrainTimesteps,
                                torch::kFloat32)
                    .pow(2);
    } else {
        betas = torch::linspace(m_config.betaStart, m_config.betaEnd, m_config.numTrainTimesteps, torch::kFloat32);
    }
    m_alphasCumprod = torch::cumprod(1.0 - betas, 0);
}

torch::Tensor Scheduler::scaleModelInput(const torch::Tensor& sample, int) const { return sample; }

std::vector<double> trainingSigmas(const torch::Tensor& alphasCumprod) {
    // numpy computes ((1 - a) / a) ** 0.5 on the float32 array, so the result is float32.
    auto s = ((1.0 - alphasCumprod) / alphasCumprod).sqrt().contiguous();
    std::vector<double> out(static_cast<std::size_t>(s.numel()));
    const float* p = s.data_ptr<float>();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = p[i];
    return out;
}

double interpolate(const std::vector<double>& values, double t) {
    if (t <= 0) return values.front();
    if (t >= static_cast<double>(values.size() - 1)) return values.back();
    const auto lo = static_cast<std::size_t>(std::floor(t));
    const double w = t - static_cast<double>(lo);
    return values[lo] + w * (values[lo + 1] - values[lo]);
}

std::vector<double> karrasSigmas(double sigmaMin, double sigmaMax, int n, double rho) {
    // Karras et al. 2022, eq. 5.
    std::vector<double> out(static_cast<std::size_t>(n));
    const double minInv = std::pow(sigmaMin, 1.0 / rho);
    const double maxInv = std::pow(sigmaMax, 1.0 / rho);
    for (int i = 0; i < n; ++i) {
        const double ramp = n == 1 ? 0.0 : static_cast<double>(i) / (n - 1);
        out[static_cast<std::size_t>(i)] = std::pow(maxInv + ramp * (minInv - maxInv), rho);
    }
    return out;
}

double sigmaToT(double sigma, const std::vector<double>& logSigmas) {
    const double logSigma = std::log(std::max(sigma, 1e-10));
    // Last index whose log sigma is <= the target, capped so that idx + 1 exists.
    std::size_t low = 0;
    for (std::size_t i = 0; i < logSigmas.size(); ++i) {
        if (logSigma - logSigmas[i] >= 0) low = i;
    }
    low = std::min(low, logSigmas.size() - 2);
    const double lo = logSigmas[low], hi = logSigmas[low + 1];
    const double w = std::clamp((lo - logSigma) / (lo - hi), 0.0, 1.0);
    return (1.0 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

std::vector<double> spacedTimesteps(TimestepSpacing spacing, int numTrain, int n, int stepsOffset) {
    std::vector<double> t(static_cast<std::size_t>(n));
    switch (spacing) {
        case TimestepSpacing::Linspace:
            for (int i = 0; i < n; ++i) {
                // np.linspace(0, T-1, n, dtype=float32)[::-1]
                // numpy: i * ((stop - start) / (n - 1)), with the last point exactly stop.
                const double delta = n == 1 ? 0.0 : static_cast<double>(numTrain - 1) / (n - 1);
                const double v = i == n - 1 ? static_cast<double>(numTrain - 1) : i * delta;
                t[static_cast<std::size_t>(n - 1 - i)] = static_cast<float>(v);
            }
            break;
        case TimestepSpacing::Leading: {
            const int ratio = numTrain / n;
            for (int i = 0; i < n; ++i)
                t[static_cast<std::size_t>(n - 1 - i)] = static_cast<double>(i * ratio + stepsOffset);
            break;
        }
        case TimestepSpacing::Trailing: {
            const double ratio = static_cast<double>(numTrain) / n;
            for (int i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = std::nearbyint(numTrain - i * ratio) - 1.0;
            break;
        }
    }
    return t;
}

std::vector<double> solverTimesteps(TimestepSpacing spacing, int numTrain, int n, int stepsOffset) {
    std::vector<double> t;
    switch (spacing) {
        case TimestepSpacing::Linspace: {
            // np.linspace(0, T - 1, n + 1).round()[::-1][:-1]; numpy forms i * ((stop - start) / n), and
            // that rounding decides ties such as 499.5 at n = 30.
            const double delta = static_cast<double>(numTrain - 1) / n;
            for (int i = n; i >= 1; --i)
                t.push_back(std::nearbyint(i == n ? static_cast<double>(numTrain - 1) : i * delta));
            break;
        }
        case TimestepSpacing::Leading: {
            // (arange(0, n + 1) * (T // (n + 1)))[::-1][:-1] + steps_offset
            const int ratio = numTrain / (n + 1);
            for (int i = n; i >= 1; --i) t.push_back(static_cast<double>(i * ratio + stepsOffset));
            break;
        }
        case TimestepSpacing::Trailing:
            t = spacedTimesteps(spacing, numTrain, n, stepsOffset);
            break;
    }
    return t;
}

SolverSchedule solverSchedule(const Scheduler& scheduler, TimestepSpacing spacing, int n) {
    const auto& config = scheduler.config();
    SolverSchedule out;
    out.timesteps = solverTimesteps(spacing, config.numTrainTimesteps, n, config.stepsOffset);
    const auto train = trainingSigmas(scheduler.alphasCumprod());
    std::vector<double> sigmas;
    if (config.useKarrasSigmas) {
        std::vector<double> logSigmas(train.size());
        for (std::size_t i = 0; i < train.size(); ++i) logSigmas[i] = std::log(train[i]);
        sigmas = karrasSigmas(train.front(), train.back(), n);
        out.timesteps.clear();
        for (double s : sigmas) out.timesteps.push_back(std::nearbyint(sigmaToT(s, logSigmas)));
    } else {
        for (double v : out.timesteps) sigmas.push_back(interpolate(train, v));
    }
    out.sigmas.assign(sigmas.begin(), sigmas.end());
    return out;
}

AlphaSigma alphaSigma(float sigma) {
    const float alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
    const float s = sigma * alpha;
    return {alpha, s, std::log(alpha) - std::log(s)};
}

void requireOption(bool ok, const std::string& scheduler, const std::string& what) {
    if (!ok) throw std::invalid_argument(scheduler + ": " + what + " is not supported");
}

void requireSolverOptions(const SchedulerConfig& c, const std::string& scheduler,
                          std::initializer_list<std::string_view> algorithms,
                          std::initializer_list<std::string_view> solverTypes) {
    const auto allowed = [](const std::string& value, std::initializer_list<std::string_view> list) {
        return value.empty() || list.size() == 0 || std::find(list.begin(), list.end(), value) != list.end();
    };
    requireOption(allowed(c.algorithmType, algorithms), scheduler, "algorithm_type '" + c.algorithmType + "'");
    requireOption(allowed(c.solverType, solverTypes), scheduler, "solver_type '" + c.solverType + "'");
    requireOption(c.solverOrder == 1 || c.solverOrder == 2, scheduler, "solver_order " + std::to_string(c.solverOrder));
}

namespace {

// The algorithm behind each diffusers class name; both spellings of a name come from the one table
// in common/sampler_names.h.
struct SchedulerClass {
    std::string_view name;
    SchedulerKind kind;
    bool karrasSigmas;  // the class has use_karras_sigmas
};

constexpr SchedulerClass kClasses[] = {
    {"EulerDiscreteScheduler", SchedulerKind::Euler, true},
    {"EulerAncestralDiscreteScheduler", SchedulerKind::EulerAncestral, false},
    {"DDIMScheduler", SchedulerKind::DDIM, false},
    {"DPMSolverMultistepScheduler", SchedulerKind::DPMPP2M, true},
    {"LCMScheduler", SchedulerKind::LCM, false},
    {"HeunDiscreteScheduler", SchedulerKind::Heun, true},
    {"PNDMScheduler", SchedulerKind::PNDM, false},
    {"LMSDiscreteScheduler", SchedulerKind::LMS, true},
    {"KDPM2DiscreteScheduler", SchedulerKind::KDPM2, true},
    {"KDPM2AncestralDiscreteScheduler", SchedulerKind::KDPM2Ancestral, true},
    {"DPMSolverSinglestepScheduler", SchedulerKind::DPMSolverSinglestep, true},
    {"UniPCMultistepScheduler", SchedulerKind::UniPC, true},
    {"DEISMultistepScheduler", SchedulerKind::DEIS, true},
    {"DDPMScheduler", SchedulerKind::DDPM, false},
};

const SchedulerClass& classOf(SchedulerKind kind) {
    for (const auto& c : kClasses) {
        if (c.kind == kind) return c;
    }
    throw std::invalid_argument("unknown scheduler kind");
}

}  // namespace

void SchedulerChoice::applyTo(SchedulerConfig& config) const {
    config.algorithmType = algorithmType;
    config.useKarrasSigmas = supportsKarrasSigmas(kind) && (karras || config.useKarrasSigmas);
}

std::string schedulerClassName(SchedulerKind kind) { return std::string(classOf(kind).name); }

bool supportsKarrasSigmas(SchedulerKind kind) { return classOf(kind).karrasSigmas; }

std::string samplerInfotextName(SchedulerKind kind, const SchedulerConfig& config) {
    const auto cls = classOf(kind).name;
    // An algorithm the table has no entry for is the class's default spelled out ("dpmsolver++").
    for (const std::string_view algorithm : {std::string_view(config.algorithmType), std::string_view()}) {
        if (const auto plain = findSampler(cls, algorithm, false)) {
            return a1111SamplerName(plain->a1111.empty() ? cls : plain->a1111, config.useKarrasSigmas);
        }
    }
    return std::string(cls);
}

SchedulerChoice parseSchedulerName(const std::string& name) {
    if (const auto entry = findSamplerName(name)) {
        for (const auto& c : kClasses) {
            if (c.name == entry->diffusersClass) return {c.kind, entry->karras, std::string(entry->algorithmType)};
        }
    }
    std::string list;
    for (const auto& n : schedulerNames()) list += (list.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown scheduler '" + name + "'; use one of: " + list);
}

std::vector<std::string> schedulerNames() {
    std::vector<std::string> out;
    for (const auto& c : kClasses) out.emplace_back(c.name);
    for (const auto& n : kSamplerNames) {
        const bool implemented = std::any_of(std::begin(kClasses), std::end(kClasses),
                                             [&](const SchedulerClass& c) { return c.name == n.diffusersClass; });
        if (implemented && !n.a1111.empty()) out.emplace_back(n.a1111);
    }
    return out;
}

}  // namespace easel::inference

#include "inference/schedulers/ddim.h"
#include "inference/schedulers/ddpm.h"
#include "inference/schedulers/deis_multistep.h"
#include "inference/schedulers/dpm_solver_multistep.h"
#include "inference/schedulers/dpm_solver_singlestep.h"
#include "inference/schedulers/euler_discrete.h"
#include "inference/schedulers/heun_discrete.h"
#include "inference/schedulers/k_dpm_2_discrete.h"
#include "inference/schedulers/lcm.h"
#include "inference/schedulers/lms_discrete.h"
#include "inference/schedulers/pndm.h"
#include "inference/schedulers/unipc_multistep.h"

namespace easel::inference {

std::unique_ptr<Scheduler> makeScheduler(SchedulerKind kind, SchedulerConfig config) {
    switch (kind) {
        case SchedulerKind::Euler:
            return std::make_unique<EulerDiscreteScheduler>(std::move(config), false);
        case SchedulerKind::EulerAncestral:
            return std::make_unique<EulerDiscreteScheduler>(std::move(config), true);
        case SchedulerKind::DDIM:
            return std::make_unique<DDIMScheduler>(std::move(config));
        case SchedulerKind::DPMPP2M:
            return std::make_unique<DPMSolverMultistepScheduler>(std::move(config));
        case SchedulerKind::LCM:
            return std::make_unique<LCMScheduler>(std::move(config));
        case SchedulerKind::Heun:
            return std::make_unique<HeunDiscreteScheduler>(std::move(config));
        case SchedulerKind::PNDM:
            return std::make_unique<PNDMScheduler>(std::move(config));
        case SchedulerKind::LMS:
            return std::make_unique<LMSDiscreteScheduler>(std::move(config));
        case SchedulerKind::KDPM2:
            return std::make_unique<KDPM2DiscreteScheduler>(std::move(config), false);
        case SchedulerKind::KDPM2Ancestral:
            return std::make_unique<KDPM2DiscreteScheduler>(std::move(config), true);
        case SchedulerKind::DPMSolverSinglestep:
            return std::make_unique<DPMSolverSinglestepScheduler>(std::move(config));
        case SchedulerKind::UniPC:
            return std::make_unique<UniPCMultistepScheduler>(std::move(config));
        case SchedulerKind::DEIS:
            return std::make_unique<DEISMultistepScheduler>(std::move(config));
        case SchedulerKind::DDPM:
            return std::make_unique<DDPMScheduler>(std::move(config));
    }
    throw std::invalid_argument("unknown scheduler kind");
}

}  // namespace easel::inference
