#pragma once
// Pieces every training run needs (the built-in model now, DreamBooth/LoRA later): an exponential
// moving average of the weights, and resumable checkpoints of model + optimizer + step + EMA.

#include <torch/torch.h>

#include <filesystem>
#include <vector>

#include "inference/loading/checkpoint_loader.h"
#include "inference/schedulers/scheduler.h"

namespace easel::inference::training {

class ExponentialMovingAverage {
public:
    ExponentialMovingAverage(const std::vector<torch::Tensor>& params, double decay);
    void update(const std::vector<torch::Tensor>& params);
    void copyTo(std::vector<torch::Tensor>& params) const;
    std::vector<torch::Tensor>& shadow() { return m_shadow; }

private:
    std::vector<torch::Tensor> m_shadow;
    double m_decay;
    long m_updates = 0;
};

// Atomic (temporary file + rename). Returns nothing; throws on I/O errors.
void saveTrainingState(const std::filesystem::path& path, torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                       int step, ExponentialMovingAverage* ema = nullptr);
void saveTrainingState(const std::filesystem::path& path, StableDiffusionModel& model,
                       torch::optim::Optimizer& optimizer, int step, ExponentialMovingAverage* ema = nullptr);
// Returns the step to resume from (0 when there is no checkpoint).
int loadTrainingState(const std::filesystem::path& path, torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                      ExponentialMovingAverage* ema = nullptr);
int loadTrainingState(const std::filesystem::path& path, StableDiffusionModel& model,
                      torch::optim::Optimizer& optimizer, ExponentialMovingAverage* ema = nullptr);

}  // namespace easel::inference::training
