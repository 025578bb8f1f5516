#pragma once
// Fine-tuning for a caller (the hosted API's fine_tune and lora_fine_tune): validation against the
// models the caller may use and the request limits, the plan's training quota (checked and the job
// inserted in one transaction), status with the stages, step, loss curve and ETA, cancel, deleting the
// trained model, the list, and an account's purge. The work runs on jobs::TrainingRunner.
//
// Quota rule: a training counts against Plan::trainingQuota from its submission while it is queued,
// running or succeeded; a failed or cancelled one does not count (its charge is given back by the
// status change that ends it); deleting the trained model does not give it back.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "accounts/account_service.h"
#include "common/clock.h"
#include "jobs/training_job.h"
#include "jobs/training_runner.h"
#include "service/generation_service.h"
#include "storage/database.h"
#include "storage/job_repository.h"

namespace easel::service {

struct TrainingOptions {
    // false: the server has no trainer. Alone, it answers submits with 503; with other servers and a
    // shared blob store (TrainingFiles::shared) it queues them for a server that has one.
    bool enabled = true;
    // How long a delete waits for a running training to stop before it gives up (409).
    std::chrono::milliseconds cancelWait{30'000};
};

struct TrainingSubmit {
    jobs::TrainingMethod method = jobs::TrainingMethod::DreamBooth;
    std::string baseModelId;  // empty: the server's default model
    std::string instancePrompt;
    std::string classPrompt;
    std::string negativePrompt;
    std::vector<jobs::Bytes> images;    // encoded, as fetched or decoded from the request
    std::vector<std::string> captions;  // none, or one per image (empty ones: the instance prompt)
    std::optional<int> maxTrainSteps;
    std::optional<std::uint64_t> seed;
    std::string trainingType;
    std::string baseModelType;
    std::string webhook;
    std::string trackId;
};

struct TrainingView {
    storage::JobRow job;
    jobs::TrainingJob request;
    std::string stage;         // jobs::stage::*
    std::string trainerStage;  // "class_images", "training", "saving"; empty before the first step
    int step = 0;              // of the trainer's stage: class images drawn, then optimiser steps
    int total = 0;
    int totalSteps = 0;  // optimiser steps of the whole training
    std::optional<double> loss;
    std::vector<std::pair<int, double>> lossCurve;
    double secondsPerStep = 0;
    std::optional<double> etaSeconds;  // while running, once the pace is known
    int resumedFrom = 0;               // a finished training that resumed: the checkpoint's step
    bool deleted = false;
};

class TrainingService {
public:
    TrainingService(const storage::Database& db, jobs::TrainingRunner& runner, jobs::ImageGenerator& generator,
                    GenerationService& generation, const Clock& clock, TrainingOptions options = {});

    TrainingView submit(const accounts::Caller& caller, TrainingSubmit request);
    // Another account's training is "not found", never "forbidden".
    TrainingView status(const accounts::Caller& caller, std::int64_t trainingId) const;
    void cancel(const accounts::Caller& caller, std::int64_t trainingId);
    // Deletes the trained model (unregistered, files removed); a queued or running training is
    // cancelled first. The training stays listed as "deleted" and keeps counting against the quota.
    void remove(const accounts::Caller& caller, std::int64_t trainingId);
    std::vector<TrainingView> list(const accounts::Caller& caller, int limit, int offset) const;
    std::int64_t total(const accounts::Caller& caller) const;
    // Account deletion: stops its trainings and deletes their work folders and trained models.
    void purge(std::int64_t userId);

    TrainingView view(const storage::JobRow& job) const;

private:
    storage::JobRow ownJob(const accounts::Caller& caller, std::int64_t trainingId) const;
    // The base model the caller may train from (a Stable Diffusion model it may use).
    jobs::ModelDescription baseModel(const accounts::Caller& caller, const std::string& id) const;
    void validate(const accounts::Caller& caller, TrainingSubmit& request, jobs::TrainingJob& job) const;
    std::string newModelId() const;

    const storage::Database& m_db;
    jobs::TrainingRunner& m_runner;
    jobs::ImageGenerator& m_generator;
    GenerationService& m_generation;
    const Clock& m_clock;
    TrainingOptions m_options;
    storage::JobRepository m_jobs;
};

}  // namespace easel::service
