#include "jobs/training_runner.h"

#include <algorithm>
#include <array>
#include <iostream>
#include <string_view>
#include <system_error>

#include "common/service_error.h"

namespace easel::jobs {
namespace {

using storage::JobStatus;

nlohmann::json parseMeta(const std::string& text) {
    auto meta = text.empty() ? nlohmann::json::object() : nlohmann::json::parse(text, nullptr, false);
    return meta.is_object() ? meta : nlohmann::json::object();
}

// The running stages in the order they come; a stage is entered once, never after a later one.
constexpr std::array<std::string_view, 4> kRunningStages{stage::kStarted, stage::kTrained, stage::kSaving,
                                                         stage::kDeploying};

}  // namespace

TrainedModel UnavailableTrainer::train(const TrainingParams&, const std::vector<TrainingImage>&,
                                       const std::filesystem::path&, const TrainingProgress&) {
    throw ServiceError(ErrorCode::Unavailable, "this server cannot fine-tune models");
}

TrainingRunner::TrainingRunner(const storage::Database& db, ImageGenerator& generator, ModelTrainer& trainer,
                               const Clock& clock, TrainingRunnerOptions options, MaxRunningFor maxRunningFor)
    : m_trainer(trainer),
      m_clock(clock),
      m_options(std::move(options)),
      m_maxRunningFor(std::move(maxRunningFor)),
      m_jobs(db),
      m_files(m_options.trainingDir, m_options.modelsDir, generator, m_options.home.empty() ? nullptr : &db,
              m_options.sharedBlobs) {}

TrainingRunner::~TrainingRunner() { stop(); }

void TrainingRunner::start() {
    m_files.createFolders();
    for (const auto& job : m_jobs.requeueRunning(m_options.maxAttempts, storage::JobFamily::Training, m_options.home)) {
        m_jobs.markFailed(job.id,
                          "the training stopped the server " + std::to_string(job.attempts) + " times and was given up",
                          m_clock.nowSeconds());
        notifyStage(job.id, stage::kFailed);
    }
    // What a crash left: staged inputs of submits that never committed, folders of ended jobs.
    m_files.sweep([this](std::int64_t id) {
        const auto job = m_jobs.find(id);
        return job && (job->status == JobStatus::Queued || job->status == JobStatus::Running);
    });
    std::lock_guard lock(m_mutex);
    if (m_thread.joinable()) return;
    m_stopping = false;
    m_thread = std::thread([this] { workerLoop(); });
}

void TrainingRunner::stop() {
    {
        std::lock_guard lock(m_mutex);
        if (!m_thread.joinable()) return;
        m_stopping = true;
        for (auto& [id, r] : m_running) r->cancel = true;
    }
    m_wake.notify_all();
    m_thread.join();
}

void TrainingRunner::notify() { m_wake.notify_all(); }

void TrainingRunner::workerLoop() {
    for (;;) {
        std::optional<storage::JobRow> job;
        std::shared_ptr<Running> state;
        {
            std::unique_lock lock(m_mutex);
            if (m_stopping) return;
            // Claimed and registered as running under one lock, as in JobRunner: a cancel sees the job
            // either queued in the database or here.
            try {
                job = m_jobs.claimNext(m_clock.nowSeconds(), m_maxRunningFor, storage::JobFamily::Training,
                                       {m_options.leaseOwner, m_options.leaseSeconds}, std::nullopt, m_options.home);
            } catch (const std::exception& e) {
                std::cerr << "easel: training queue: " << e.what() << '\n';
            }
            if (!job) {
                lock.unlock();
                takeOverExpired();
                lock.lock();
                if (!m_stopping) m_wake.wait_for(lock, std::chrono::milliseconds(500));
                continue;
            }
            state = std::make_shared<Running>();
            state->userId = job->userId;
            state->attempt = job->attempts;
            m_running[job->id] = state;
        }
        run(*job, state);
    }
}

bool TrainingRunner::stillRunning(const storage::JobRow& job) const {
    const auto current = m_jobs.find(job.id);
    return current && current->status == JobStatus::Running && current->attempts == job.attempts;
}

void TrainingRunner::takeOverExpired() {
    if (m_options.leaseOwner.empty()) return;
    try {
        std::vector<storage::JobRow> requeued;
        for (const auto& job :
             m_jobs.requeueExpiredLeases(m_clock.nowSeconds(), m_options.maxAttempts, m_options.leaseOwner,
                                         storage::JobFamily::Training, requeued)) {
            if (m_jobs.markFailed(job.id,
                                  "the servers running the training stopped " + std::to_string(job.attempts) +
                                      " times and it was given up",
                                  m_clock.nowSeconds(), job.attempts)) {
                notifyStage(job.id, stage::kFailed);
            }
        }
        for (const auto& job : requeued) {
            try {
                // Its images are in the blob store: any server with a trainer may start it again.
                if (!trainingJobFromJson(nlohmann::json::parse(job.request)).inputBlobs.empty())
                    m_jobs.setHome(job.id, "");
            } catch (const std::exception& e) {
                std::cerr << "easel: freeing training " << job.id << " of its stopped server: " << e.what() << '\n';
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "easel: looking for trainings of stopped servers: " << e.what() << '\n';
    }
}

void TrainingRunner::run(const storage::JobRow& job, const std::shared_ptr<Running>& state) {
    Outcome outcome = Outcome::Failed;
    std::string error;
    auto meta = parseMeta(job.meta);
    TrainingJob request;
    bool installed = false;
    std::int64_t publishedVersion = 0;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        request = trainingJobFromJson(nlohmann::json::parse(job.request));
        m_files.fetchInputBlobs(job.id, job.userId, request.inputBlobs);  // submitted to a server without a trainer
        auto images = m_files.inputs(job.id, request.imageCount);
        for (std::size_t i = 0; i < images.size() && i < request.captions.size(); ++i)
            images[i].caption = request.captions[i];
        {
            std::lock_guard lock(m_mutex);
            state->progress.trainSteps = request.params.maxTrainSteps;
            state->progress.lossCurve = lossCurveFromJson(meta);  // what an interrupted attempt saved
        }
        enterStage(job, *state, stage::kStarted);
        auto last = std::chrono::steady_clock::now();
        auto lastCheck = last;
        const auto result =
            m_trainer.train(request.params, images, m_files.checkpointDir(job.id), [&](const TrainingStep& step) {
                recordStep(job, *state, step, last);
                // Several servers: a cancel (or an account's purge) taken by another server is a flag on
                // the row, looked at now and then.
                const auto now = std::chrono::steady_clock::now();
                if (!m_options.home.empty() &&
                    std::chrono::duration<double>(now - lastCheck).count() >= m_options.cancelCheckSeconds) {
                    lastCheck = now;
                    try {
                        // Its lease, too (JobRunner's heartbeat renews it as well); a run another server
                        // took over (its attempt changed) stops here.
                        if (!m_options.leaseOwner.empty())
                            m_jobs.renewLeases(m_options.leaseOwner, m_clock.nowSeconds() + m_options.leaseSeconds);
                        if (!m_jobs.toStop({{job.id, job.attempts}}).empty()) state->cancel = true;
                    } catch (const std::exception& e) {
                        std::cerr << "easel: looking for a cancel of training " << job.id << ": " << e.what() << '\n';
                    }
                }
                return !state->cancel.load();
            });
        if (state->cancel.load()) throw GenerationCancelledError();  // asked to stop right at the end
        // Several servers: a run another server took over (this one was presumed dead) installs nothing.
        // (When the database cannot say, the run goes on: markSucceeded below is fenced.)
        bool takenOver = false;
        try {
            takenOver = !m_options.leaseOwner.empty() && !m_jobs.toStop({{job.id, job.attempts}}).empty();
        } catch (const std::exception& e) {
            std::cerr << "easel: looking for a takeover of training " << job.id << ": " << e.what() << '\n';
        }
        if (takenOver) throw GenerationCancelledError();
        enterStage(job, *state, stage::kTrained);
        enterStage(job, *state, stage::kSaving);
        enterStage(job, *state, stage::kDeploying);
        m_files.install(request.modelId, result, job.userId);
        installed = true;
        try {
            publishedVersion = m_files.publish(request.modelId, job.userId, job.attempts);  // to every server
        } catch (const std::exception& e) {
            std::cerr << "easel: publishing trained model " << request.modelId << ": " << e.what() << '\n';
            throw std::runtime_error("the trained model could not be stored for the other servers");
        }
        {
            std::lock_guard lock(m_mutex);
            meta["loss_curve"] = lossCurveJson(state->progress.lossCurve);
            meta["seconds_per_step"] = state->progress.secondsPerStep;
            meta["step"] = state->progress.step;
            meta["total_steps"] = request.params.maxTrainSteps;
        }
        meta["model_id"] = request.modelId;
        meta["model_category"] = result.category;
        meta["trainer"] = result.meta;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // Only a running job succeeds; one cancelled meanwhile loses its model below.
        if (!m_jobs.markSucceeded(job.id, meta.dump(), seconds, m_clock.nowSeconds(), job.attempts))
            throw GenerationCancelledError();
        outcome = Outcome::Succeeded;
    } catch (const GenerationCancelledError&) {
        std::lock_guard lock(m_mutex);
        outcome = m_stopping ? Outcome::Requeued : Outcome::Cancelled;
    } catch (const std::filesystem::filesystem_error& e) {
        // The detail names paths on this server: it goes to the log, the owner gets what happened.
        std::cerr << "easel: training " << job.id << ": " << e.what() << '\n';
        error = e.code() == std::errc::no_space_on_device ? "the server ran out of disk space for the training"
                                                          : "the server could not store the training's files";
    } catch (const std::exception& e) {
        error = e.what();
    } catch (...) {
        error = "unknown error";
    }
    if (outcome != Outcome::Succeeded && installed) {
        try {
            // This server's copy, and what this run published unless another run of the job has since.
            m_files.uninstallRun(request.modelId, publishedVersion);
        } catch (const std::exception& e) {
            std::cerr << "easel: removing the model of training " << job.id << ": " << e.what() << '\n';
        }
    }
    end(job, request, outcome, error, state);
}

void TrainingRunner::recordStep(const storage::JobRow& job, Running& state, const TrainingStep& step,
                                std::chrono::steady_clock::time_point& last) {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last).count();
    last = now;
    bool save = false;
    {
        std::lock_guard lock(m_mutex);
        auto& p = state.progress;
        // The pace of consecutive steps of one stage (the first report also holds loading the model).
        if (step.stage == p.trainerStage && step.step > p.step)
            p.secondsPerStep = p.secondsPerStep <= 0 ? seconds : 0.8 * p.secondsPerStep + 0.2 * seconds;
        p.trainerStage = step.stage;
        p.step = step.step;
        p.total = step.total;
        if (step.stage == "training") {
            p.loss = step.loss;
            // A resumed attempt goes on from its checkpoint, which may be behind the curve saved last.
            while (!p.lossCurve.empty() && p.lossCurve.back().first >= step.step) p.lossCurve.pop_back();
            p.lossCurve.emplace_back(step.step, step.loss);
            save = m_options.saveCurveEvery > 0 && step.step % m_options.saveCurveEvery == 0;
        }
        // Several servers: the others read the progress from the meta.
        if (!m_options.home.empty() &&
            std::chrono::duration<double>(now - state.lastSaved).count() >= m_options.progressSaveSeconds)
            save = true;
    }
    if (step.stage == "saving") {
        enterStage(job, state, stage::kTrained);
        enterStage(job, state, stage::kSaving);
    }
    if (save) saveCurve(job.id, state);
}

void TrainingRunner::enterStage(const storage::JobRow& job, Running& state, const char* stage) {
    const auto index =
        static_cast<int>(std::find(kRunningStages.begin(), kRunningStages.end(), stage) - kRunningStages.begin());
    {
        std::lock_guard lock(m_mutex);
        if (index <= state.stageIndex) return;
        state.stageIndex = index;
        state.progress.stage = stage;
    }
    if (!m_options.home.empty()) saveCurve(job.id, state);  // other servers show the stage too
    notifyStage(job.id, stage);
}

void TrainingRunner::saveCurve(std::int64_t jobId, Running& state) {
    nlohmann::json meta;
    {
        std::lock_guard lock(m_mutex);
        meta = progressMeta(state.progress);
        state.lastSaved = std::chrono::steady_clock::now();
    }
    try {
        m_jobs.setMeta(jobId, meta.dump(), state.attempt);
    } catch (const std::exception& e) {
        std::cerr << "easel: saving the loss curve of training " << jobId << ": " << e.what() << '\n';
    }
}

void TrainingRunner::end(const storage::JobRow& job, const TrainingJob& request, Outcome outcome,
                         const std::string& error, const std::shared_ptr<Running>& state) {
    bool recorded = true;  // false: another server took the job over, and it is theirs now
    try {
        const auto now = m_clock.nowSeconds();
        if (outcome == Outcome::Cancelled || outcome == Outcome::Failed) recorded = stillRunning(job);
        if (recorded && outcome != Outcome::Succeeded) saveCurve(job.id, *state);  // the curve so far stays readable
        switch (outcome) {
            case Outcome::Succeeded:
                break;
            case Outcome::Requeued:
                m_jobs.requeue(job.id, job.attempts);
                // This server is stopping: one whose images are in the blob store may go on elsewhere
                // (from the start), instead of waiting for this one to come back.
                if (!request.inputBlobs.empty()) m_jobs.setHome(job.id, "");
                break;
            case Outcome::Cancelled:
                recorded = recorded && m_jobs.markCancelled(job.id, now, job.attempts);
                break;
            case Outcome::Failed:
                recorded = recorded && m_jobs.markFailed(job.id, error, now, job.attempts);
                break;
        }
        if (outcome != Outcome::Requeued && recorded) {
            m_files.removeWorkDir(job.id);  // a re-queued one resumes from it
            // Its images' blobs were copied into the work folder, kept until the job ended.
            m_files.removeBlobs(job.userId, request.inputBlobs);
        }
    } catch (const std::exception& e) {
        // The row still says running; this server's next start (or, with leases, another server once
        // this one stops renewing) re-queues it.
        std::cerr << "easel: recording the outcome of training " << job.id << ": " << e.what() << '\n';
    }
    // Told before the job leaves m_running, so whoever waits for it (waitFinished) finds it told.
    if (outcome != Outcome::Requeued && recorded) {
        notifyStage(job.id, outcome == Outcome::Succeeded   ? stage::kReady
                            : outcome == Outcome::Cancelled ? stage::kCancelled
                                                            : stage::kFailed);
    }
    {
        std::lock_guard lock(m_mutex);
        m_running.erase(job.id);
        ++m_finishedCount;
    }
    m_finished.notify_all();
    m_wake.notify_all();  // the owner's slot is free again
}

void TrainingRunner::notifyStage(std::int64_t jobId, const std::string& stage) {
    if (!m_stageHook) return;
    try {
        if (const auto row = m_jobs.find(jobId)) m_stageHook(*row, stage);
    } catch (const std::exception& e) {
        std::cerr << "easel: after training " << jobId << " entered " << stage << ": " << e.what() << '\n';
    }
}

bool TrainingRunner::cancel(std::int64_t jobId) {
    {
        std::lock_guard lock(m_mutex);
        if (const auto it = m_running.find(jobId); it != m_running.end()) {
            it->second->cancel = true;
            return true;
        }
    }
    const auto job = m_jobs.find(jobId);
    // Several servers: it runs on its home, which stops it at its next look.
    if (job && job->status == JobStatus::Running && !m_options.home.empty()) return m_jobs.requestCancel(jobId);
    if (!job || job->status != JobStatus::Queued) return false;
    if (!m_jobs.cancelIfQueued(jobId, m_clock.nowSeconds())) {
        // A worker claimed it in between: ask that run to stop instead (another server's, at its next look).
        {
            std::lock_guard lock(m_mutex);
            if (const auto it = m_running.find(jobId); it != m_running.end()) {
                it->second->cancel = true;
                return true;
            }
        }
        return !m_options.home.empty() && m_jobs.requestCancel(jobId);
    }
    m_files.removeWorkDir(jobId);
    try {
        m_files.removeBlobs(job->userId, trainingJobFromJson(nlohmann::json::parse(job->request)).inputBlobs);
    } catch (const std::exception&) {
        // A damaged request: its blobs are left to the orphan sweep.
    }
    {
        std::lock_guard lock(m_mutex);
        ++m_finishedCount;
    }
    m_finished.notify_all();
    notifyStage(jobId, stage::kCancelled);
    return true;
}

void TrainingRunner::cancelAllOf(std::int64_t userId) {
    for (const auto id : m_jobs.cancelQueuedOf(userId, m_clock.nowSeconds(), storage::JobFamily::Training))
        m_files.removeWorkDir(id);
    // Several servers: those running on other homes stop at their next look.
    if (!m_options.home.empty()) m_jobs.requestCancelOf(userId, storage::JobFamily::Training);
    std::unique_lock lock(m_mutex);
    for (auto& [id, r] : m_running) {
        if (r->userId == userId) r->cancel = true;
    }
    m_finished.wait(lock, [&] {
        return std::none_of(m_running.begin(), m_running.end(),
                            [&](const auto& entry) { return entry.second->userId == userId; });
    });
}

bool TrainingRunner::waitFinished(std::int64_t jobId, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(m_mutex);
    for (;;) {
        lock.unlock();
        const auto job = m_jobs.find(jobId);
        const bool ended = !job || (job->status != JobStatus::Queued && job->status != JobStatus::Running);
        lock.lock();
        // Ended in the database and done with its files (an uninstall after a late cancel included).
        if (ended && !m_running.contains(jobId)) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        const auto seen = m_finishedCount;
        m_finished.wait_until(lock,
                              std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)),
                              [&] { return m_finishedCount != seen; });
    }
}

std::optional<TrainingProgressState> TrainingRunner::progress(std::int64_t jobId) const {
    std::lock_guard lock(m_mutex);
    const auto it = m_running.find(jobId);
    if (it == m_running.end()) return std::nullopt;
    return it->second->progress;
}

int TrainingRunner::runningCount() const {
    std::lock_guard lock(m_mutex);
    return static_cast<int>(m_running.size());
}

}  // namespace easel::jobs
