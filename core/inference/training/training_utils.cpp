#include "inference/training/training_utils.h"

#include <algorithm>

namespace easel::inference::training {
namespace {

// Unet and text encoder under one parent, so that one archive holds both.
std::shared_ptr<torch::nn::Module> trainablePair(StableDiffusionModel& model) {
    auto parent = std::make_shared<torch::nn::Module>();
    parent->register_module("unet", model.unet.ptr());
    parent->register_module("text", model.textModule);
    return parent;
}

}  // namespace

ExponentialMovingAverage::ExponentialMovingAverage(const std::vector<torch::Tensor>& params, double decay)
    : m_decay(decay) {
    for (const auto& p : params) m_shadow.push_back(p.detach().clone());
}

void ExponentialMovingAverage::update(const std::vector<torch::Tensor>& params) {
    torch::NoGradGuard noGrad;
    ++m_updates;
    // Warm-up as in common EMA implementations: the average follows closely at first.
    const double decay = std::min(m_decay, (1.0 + m_updates) / (10.0 + m_updates));
    for (std::size_t i = 0; i < params.size(); ++i) m_shadow[i].mul_(decay).add_(params[i].detach(), 1.0 - decay);
}

void ExponentialMovingAverage::copyTo(std::vector<torch::Tensor>& params) const {
    torch::NoGradGuard noGrad;
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(m_shadow[i]);
}

void saveTrainingState(const std::filesystem::path& path, torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                       int step, ExponentialMovingAverage* ema) {
    torch::serialize::OutputArchive archive;
    module.save(archive);
    torch::serialize::OutputArchive optimArchive;
    optimizer.save(optimArchive);
    archive.write("optimizer", optimArchive);
    archive.write("step", torch::tensor(static_cast<int64_t>(step)));
    if (ema != nullptr) {
        for (std::size_t i = 0; i < ema->shadow().size(); ++i)
            archive.write("ema." + std::to_string(i), ema->shadow()[i], true);
    }
    const auto tmp = path.string() + ".tmp";
    archive.save_to(tmp);
    std::filesystem::rename(tmp, path);
}

void saveTrainingState(const std::filesystem::path& path, StableDiffusionModel& model,
                       torch::optim::Optimizer& optimizer, int step, ExponentialMovingAverage* ema) {
    saveTrainingState(path, *trainablePair(model), optimizer, step, ema);
}

int loadTrainingState(const std::filesystem::path& path, torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                      ExponentialMovingAverage* ema) {
    if (!std::filesystem::exists(path)) return 0;
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    module.load(archive);
    torch::serialize::InputArchive optimArchive;
    archive.read("optimizer", optimArchive);
    optimizer.load(optimArchive);
    torch::Tensor step;
    archive.read("step", step);
    if (ema != nullptr) {
        for (std::size_t i = 0; i < ema->shadow().size(); ++i)
            archive.read("ema." + std::to_string(i), ema->shadow()[i], true);
    }
    return static_cast<int>(step.item<int64_t>());
}

int loadTrainingState(const std::filesystem::path& path, StableDiffusionModel& model,
                      torch::optim::Optimizer& optimizer, ExponentialMovingAverage* ema) {
    return loadTrainingState(path, *trainablePair(model), optimizer, ema);
}

}  // namespace easel::inference::training
