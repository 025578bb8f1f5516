#pragma once
// The one worker that runs fine-tunes ("fine_tune", "lora_fine_tune" jobs) from the persistent queue,
// beside JobRunner's generation workers and never claiming their jobs (nor they its: JobFamily). A
// training runs for minutes to hours on the GPU, so there is one at a time; priority and the owners'
// caps apply as for generation.
//
// Files (TrainingFiles): every job has a work folder kept across attempts: after a crash, start()
// re-queues the running job and train() is called again on the same folder, where it resumes. The
// result is installed in the models dir and registered as its owner's private model or LoRA.
//
// The training charge is the job's status (TrainingService counts queued, running and succeeded
// trainings), so a failed or cancelled training gives it back in the same update that ends it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "jobs/image_generator.h"
#include "jobs/model_trainer.h"
#include "jobs/training_files.h"
#include "jobs/training_job.h"
#include "storage/database.h"
#include "storage/job_repository.h"

namespace easel::jobs {

struct TrainingRunnerOptions {
    std::filesystem::path trainingDir = "easel-data/training";
    std::filesystem::path modelsDir = "easel-data/models";
    int maxAttempts = 3;  // a training that crashed the process this often is failed
    // The loss curve is written to the job's meta every this many optimiser steps (and at the end),
    // so that a resumed training shows the whole curve.
    int saveCurveEvery = 50;
    // Several servers on one database: this server's home (its host and data dir). Trainings submitted
    // here carry it and only servers of that home run them (their inputs and checkpoints are in this
    // data dir); a start re-queues only this home's trainings. "": one server, any training.
    std::string home;
    // With a home: how often (seconds) a running training looks for a cancel sent to another server.
    double cancelCheckSeconds = 2.0;
    // With a home: how often (seconds) a running training's progress goes to the job's meta, where the
    // other servers' fine_tune_status reads it (and at each stage change).
    double progressSaveSeconds = 2.0;
    // With a home: the blob store the servers share (TrainingFiles: inputs of trainings submitted to a
    // server without a trainer, which have no home until one takes them; trained models published to
    // every server). Null: trained models stay on the server that trained them.
    storage::BlobStore* sharedBlobs = nullptr;
    // With a home: the lease a running training holds (JobRunner's worker id, whose heartbeat renews it,
    // as this runner does at its cancel checks). A training whose lease ran out (its server died) goes
    // back to the queue; one whose images are in the blob store loses its home too, and the first server
    // with a trainer starts it again (its checkpoints were on the dead server); the others wait for
    // their home. "": no leases.
    std::string leaseOwner;
    std::int64_t leaseSeconds = 60;
};

// A server built without a trainer: every training fails with this (the service refuses them first).
class UnavailableTrainer final : public ModelTrainer {
public:
    TrainedModel train(const TrainingParams&, const std::vector<TrainingImage>&, const std::filesystem::path&,
                       const TrainingProgress&) override;
};

class TrainingRunner {
public:
    using MaxRunningFor = std::function<int(std::int64_t userId)>;
    // Each stage change of a job, its end included ("model_ready", "failed", "cancelled"), with the row
    // as it stands then. Called on the worker (or the cancelling) thread, without locks held.
    using StageHook = std::function<void(const storage::JobRow& job, const std::string& stage)>;

    TrainingRunner(const storage::Database& db, ImageGenerator& generator, ModelTrainer& trainer, const Clock& clock,
                   TrainingRunnerOptions options, MaxRunningFor maxRunningFor);
    ~TrainingRunner();
    TrainingRunner(const TrainingRunner&) = delete;
    TrainingRunner& operator=(const TrainingRunner&) = delete;

    // Re-queues what a crash left running (failing what used every attempt), removes the work folders
    // of ended jobs, then starts the worker.
    void start();
    // Stops the worker; a training in progress goes back to the queue and resumes on the next start.
    void stop();
    void notify();
    void setStageHook(StageHook hook) { m_stageHook = std::move(hook); }

    // The work folders and installed models (TrainingService stages a new job's inputs there).
    const TrainingFiles& files() const { return m_files; }
    // TrainingRunnerOptions::home: what this server's trainings carry.
    const std::string& home() const { return m_options.home; }

    // Queued: cancelled at once. Running: stops at the trainer's next step. False when not active.
    bool cancel(std::int64_t jobId);
    // Cancels the account's trainings and waits until none runs (account purge).
    void cancelAllOf(std::int64_t userId);
    bool waitFinished(std::int64_t jobId, std::chrono::milliseconds timeout);
    std::optional<TrainingProgressState> progress(std::int64_t jobId) const;
    int runningCount() const;

private:
    struct Running {
        std::int64_t userId = 0;
        int attempt = 0;  // the claim's (JobRow::attempts): what the run's writes are fenced by
        std::atomic<bool> cancel{false};
        int stageIndex = -1;  // of the running stages entered so far
        TrainingProgressState progress;
        std::chrono::steady_clock::time_point lastSaved{};  // of the progress, to the job's meta
    };
    enum class Outcome { Succeeded, Failed, Cancelled, Requeued };

    void workerLoop();
    // Whether the job still runs this run's attempt (false: re-queued or taken over after its lease
    // ran out, or ended meanwhile).
    bool stillRunning(const storage::JobRow& job) const;
    // Several servers: re-queues the trainings of servers that stopped renewing their leases.
    void takeOverExpired();
    void run(const storage::JobRow& job, const std::shared_ptr<Running>& state);
    // Sets the running job's stage and tells the hook (once per change).
    void enterStage(const storage::JobRow& job, Running& state, const char* stage);
    void recordStep(const storage::JobRow& job, Running& state, const TrainingStep& step,
                    std::chrono::steady_clock::time_point& last);
    void saveCurve(std::int64_t jobId, Running& state);
    // Records the outcome (fenced by the run's attempt: a run another server took over changes nothing)
    // and removes what the job no longer needs.
    void end(const storage::JobRow& job, const TrainingJob& request, Outcome outcome, const std::string& error,
             const std::shared_ptr<Running>& state);
    void notifyStage(std::int64_t jobId, const std::string& stage);

    ModelTrainer& m_trainer;
    const Clock& m_clock;
    TrainingRunnerOptions m_options;
    MaxRunningFor m_maxRunningFor;
    StageHook m_stageHook;
    storage::JobRepository m_jobs;
    TrainingFiles m_files;

    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    std::condition_variable m_finished;
    std::map<std::int64_t, std::shared_ptr<Running>> m_running;
    std::thread m_thread;
    bool m_stopping = false;
    std::uint64_t m_finishedCount = 0;
};

}  // namespace easel::jobs
