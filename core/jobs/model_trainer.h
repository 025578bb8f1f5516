#pragma once
// The one thing the job layer needs from inference for fine-tuning (DreamBooth, LoRA): turn a base
// model and a handful of images into a new model file. An interface, like ImageGenerator, so that the
// backend and its tests run without libtorch (tests use a fake; app/ wires the model registry).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "jobs/image_generator.h"

namespace easel::jobs {

enum class TrainingMethod { DreamBooth, LoRA };

struct TrainingImage {
    Bytes encoded;        // PNG, JPEG or WebP, as the user gave it
    std::string caption;  // empty: the instance prompt
};

struct TrainingParams {
    TrainingMethod method = TrainingMethod::DreamBooth;
    std::string baseModelId;     // a "stable_diffusion" model of ImageGenerator::models()
    std::string instancePrompt;  // "a photo of sks dog": the rare token the result learns
    // Prior preservation: the base model first draws class images from this prompt, and training
    // keeps reproducing them so the class does not drift. Empty: no prior preservation.
    std::string classPrompt;
    std::string negativePrompt;  // for the class images
    int maxTrainSteps = 0;       // the service decides (default 2 x images, at most 2000)
    std::uint64_t seed = 0;
    int loraRank = 16;  // LoRA only
    double loraAlpha = 16;
    std::string outputName;  // the result's name (model.json "name", the LoRA's ss_output_name)
};

// `stage`: "class_images" (the base model draws the prior images; step/total count them), "training"
// (step/total are optimiser steps, loss is that step's loss), "saving" (writing the result).
struct TrainingStep {
    std::string stage;
    int step = 0;
    int total = 0;
    double loss = 0;
};
// Return false to stop; the trainer then throws GenerationCancelledError within one step.
using TrainingProgress = std::function<bool(const TrainingStep&)>;

struct TrainedModel {
    // Inside workDir: a model folder (DreamBooth: model.json + model.safetensors [+ tokenizer.json]),
    // loadable by ImageGenerator::addModel, or a kohya-format LoRA .safetensors (addAdapter "lora").
    std::filesystem::path path;
    std::string category = "stable_diffusion";  // or "lora"
    nlohmann::json meta;                        // steps, final loss, seconds per step, ...
};

class ModelTrainer {
public:
    virtual ~ModelTrainer() = default;
    // Runs the fine-tune, or resumes it from the last checkpoint in `workDir` (the same folder on
    // every attempt of one job: after a crash the job is re-run and continues where it stopped).
    // Throws ServiceError(BadRequest) for what the base model cannot do (unknown id, an SDXL base
    // where only SD 1.x/2.x train), GenerationCancelledError when `progress` returned false, anything
    // else for a failure.
    virtual TrainedModel train(const TrainingParams& params, const std::vector<TrainingImage>& images,
                               const std::filesystem::path& workDir, const TrainingProgress& progress) = 0;
};

}  // namespace easel::jobs
