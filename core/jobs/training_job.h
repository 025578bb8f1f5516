#pragma once
// A fine-tune as the job layer keeps it: what the `request` column of a "fine_tune" / "lora_fine_tune"
// job holds (the trainer's parameters plus the id promised for the result), the stages the hosted API
// reports, and the progress kept while it runs (also saved in the job's meta so that it outlives the run).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "jobs/model_trainer.h"

namespace easel::jobs {

struct TrainingJob {
    TrainingParams params;
    std::string modelId;        // the trained model's id, answered at submit ("ft-...")
    int imageCount = 0;         // the inputs, kept in the job's work folder
    std::string trainingType;   // the hosted API's training_type (men, women, female, couple), echoed
    std::string baseModelType;  // lora_fine_tune's base_model_type, echoed
    // One caption per input image (kohya's .txt files; an Easel extension), empty: the instance prompt.
    std::vector<std::string> captions;
    // Several servers, submitted to one without a trainer: the inputs are these blobs of the owner in
    // the shared blob store (in order), fetched into the work folder by the server that takes the job.
    std::vector<std::string> inputBlobs;
};

nlohmann::json toJson(const TrainingJob& job);
// Throws nlohmann::json::exception on a damaged request.
TrainingJob trainingJobFromJson(const nlohmann::json& j);

// The hosted API's training stages, in order. "deploying_gpu" is a queued job; the trainer's
// "class_images" and "training" are "training_started"; its "saving" is "trained_model_compressing"
// (after "training_success"); registering the result is "deploying_model". The end states are
// "model_ready", "failed" and "cancelled" ("deleted" once the owner deleted the model).
namespace stage {
inline constexpr const char* kQueued = "deploying_gpu";
inline constexpr const char* kStarted = "training_started";
inline constexpr const char* kTrained = "training_success";
inline constexpr const char* kSaving = "trained_model_compressing";
inline constexpr const char* kDeploying = "deploying_model";
inline constexpr const char* kReady = "model_ready";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kCancelled = "cancelled";
inline constexpr const char* kDeleted = "deleted";
}  // namespace stage

// What a running training reports: its stage, the trainer's step (of the class images, then of the
// optimiser), the loss curve of the optimiser steps, and the measured pace.
struct TrainingProgressState {
    std::string stage = stage::kStarted;
    std::string trainerStage;  // "class_images", "training", "saving" (empty before the first report)
    int step = 0;
    int total = 0;
    double loss = 0;
    std::vector<std::pair<int, double>> lossCurve;  // (optimiser step, loss)
    double secondsPerStep = 0;                      // 0 until two steps were seen
    int trainSteps = 0;                             // the optimiser steps of the whole training
    double etaSeconds() const;
};

// A running training's progress as the job's meta keeps it (saved now and then by the server running it,
// read by the others): stage, trainer_stage, step, trainer_total, total_steps, seconds_per_step, loss_curve.
nlohmann::json progressMeta(const TrainingProgressState& progress);
// `trainSteps`: the training's optimiser steps (the request's), where the meta does not say.
TrainingProgressState progressFromMeta(const nlohmann::json& meta, int trainSteps);

// The loss curve as the job's meta keeps it: [[step, loss], ...].
nlohmann::json lossCurveJson(const std::vector<std::pair<int, double>>& curve);
std::vector<std::pair<int, double>> lossCurveFromJson(const nlohmann::json& meta);

}  // namespace easel::jobs
