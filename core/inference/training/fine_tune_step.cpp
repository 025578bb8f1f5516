#include "inference/training/fine_tune_step.h"

#include <ATen/autocast_mode.h>

#include "inference/schedulers/scheduler.h"

namespace easel::inference::training {
namespace {

// CPU autocast for the forward pass (the backward follows the dtypes the forward chose). Thread-local,
// so a generation on another thread is not affected.
class AutocastGuard {
public:
    explicit AutocastGuard(bool on) : m_on(on) {
        if (!m_on) return;
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        at::autocast::set_cpu_enabled(true);
    }
    ~AutocastGuard() {
        if (!m_on) return;
        at::autocast::set_cpu_enabled(false);
        at::autocast::clear_cache();
    }
    AutocastGuard(const AutocastGuard&) = delete;
    AutocastGuard& operator=(const AutocastGuard&) = delete;

private:
    bool m_on;
};

}  // namespace

FineTuneStepper::FineTuneStepper(StableDiffusionModel& model, const StepSettings& s) : m_model(model), m_settings(s) {
    for (auto& p : model.vae->parameters()) p.set_requires_grad(false);
    if (s.lora) {
        for (auto& p : model.unet->parameters()) p.set_requires_grad(false);
        for (auto& p : model.textModule->parameters()) p.set_requires_grad(false);
        m_network = LoRANetwork(model, s.loraRank, s.loraAlpha, s.trainTextEncoder, s.seed);
        m_params = m_network->parameters();
        m_state = m_network.ptr();
        m_network->attach();  // for the stepper's life: the branches read the factors as they train
    } else {
        m_params = model.unet->parameters();
        for (auto& p : model.textModule->parameters()) {
            p.set_requires_grad(s.trainTextEncoder);
            if (s.trainTextEncoder) m_params.push_back(p);
        }
        auto pair = std::make_shared<torch::nn::Module>();
        pair->register_module("unet", model.unet.ptr());
        pair->register_module("text", model.textModule);
        m_state = pair;
    }
    m_optimizer =
        std::make_unique<torch::optim::AdamW>(m_params, torch::optim::AdamWOptions(s.learningRate).weight_decay(1e-2));
    m_alphas = makeScheduler(SchedulerKind::DDIM, SchedulerConfig{})->alphasCumprod();
    model.unet->train();
    model.textModule->train();
    model.unet->gradientCheckpointing = s.gradientCheckpointing;
}

FineTuneStepper::~FineTuneStepper() {
    m_model.unet->gradientCheckpointing = false;
    if (m_network) m_network->detach();
}

std::size_t FineTuneStepper::trainableParameters() const {
    std::size_t n = 0;
    for (const auto& p : m_params) n += static_cast<std::size_t>(p.numel());
    return n;
}

double FineTuneStepper::step(const torch::Tensor& x0, const torch::Tensor& ids, int instances,
                             torch::Generator& generator) {
    const auto& s = m_settings;
    const auto n = x0.size(0);
    const bool vPrediction = m_model.detected.prediction == PredictionType::VPrediction;
    const auto t = torch::randint(m_alphas.size(0), {n}, generator, torch::kLong);
    const auto a = m_alphas.index_select(0, t).view({-1, 1, 1, 1});
    auto noise = torch::randn(x0.sizes(), generator, torch::kFloat32);
    if (s.offsetNoise > 0)
        noise = noise + s.offsetNoise * torch::randn({n, x0.size(1), 1, 1}, generator, torch::kFloat32);
    const auto noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise;
    const auto target = vPrediction ? a.sqrt() * noise - (1 - a).sqrt() * x0 : noise;
    const auto weight = m_model.unet->parameters().front();  // a copy: parameters() returns a temporary
    const auto device = weight.device();
    // A LoRA trains on frozen bf16 weights directly (no fp32 copy, no autocast cache of one); under
    // autocast the inputs stay float32 and each op picks its dtype.
    const auto dtype = s.bf16Autocast ? torch::kFloat32 : weight.scalar_type();

    torch::Tensor perSample;
    {
        AutocastGuard autocast(s.bf16Autocast && !device.is_cuda());
        const auto context = m_model.textEncoder->encode(ids.to(device), 1).hidden;
        const auto input = noisy.to(device, dtype).contiguous(torch::MemoryFormat::ChannelsLast);
        const auto pred = m_model.unet->forward(input, t.to(torch::kFloat32).to(device), context);
        perSample = (pred.to(torch::kFloat32).cpu() - target).pow(2).mean({1, 2, 3});
    }
    if (s.minSnrGamma > 0) {  // Hang et al. 2023; for v-prediction the weight is min(SNR, gamma) / (SNR + 1)
        const auto snr = (a / (1 - a)).view({-1});
        perSample = perSample * torch::clamp_max(snr, s.minSnrGamma) / (vPrediction ? snr + 1 : snr);
    }
    auto loss = perSample.slice(0, 0, instances).mean();
    if (instances < n) loss = loss + s.priorWeight * perSample.slice(0, instances).mean();
    m_optimizer->zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(m_params, 1.0);
    m_optimizer->step();
    return loss.item<double>();
}

}  // namespace easel::inference::training
