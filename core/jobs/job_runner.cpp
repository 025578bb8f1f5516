#include "jobs/job_runner.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <limits>
#include <system_error>
#include <utility>

#include "common/random_token.h"
#include "common/service_error.h"
#include "jobs/model_catalog.h"
#include "jobs/training_files.h"
#include "jobs/training_job.h"
#include "storage/model_install_repository.h"
#include "storage/worker_repository.h"

namespace easel::jobs {

JobRunner::JobRunner(const storage::Database& db, storage::BlobStore& blobs, ImageGenerator& generator,
                     const Clock& clock, JobRunnerOptions options, MaxRunningFor maxRunningFor)
    : m_db(db),
      m_blobs(blobs),
      m_generator(generator),
      m_clock(clock),
      m_options(options),
      m_maxRunningFor(std::move(maxRunningFor)),
      m_jobs(db),
      m_ledger(db) {
    if (m_options.workerId.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        m_options.workerId = std::string(host) + ":" + std::to_string(::getpid()) + ":" + randomToken().substr(0, 8);
    }
    m_options.leaseSeconds = std::max<std::int64_t>(1, m_options.leaseSeconds);
}

JobRunner::~JobRunner() { stop(); }

void JobRunner::recover(bool allRunning) {
    const auto exhausted = allRunning
                               ? m_jobs.requeueRunning(m_options.maxAttempts)
                               : m_jobs.requeueExpired(m_clock.nowSeconds(), m_options.maxAttempts, m_options.workerId);
    for (const auto& job : exhausted) {
        discardImages(job);
        m_ledger.endWithRefund(job.userId, job.images, [&] {
            return m_jobs.markFailed(
                job.id, "the job stopped the server " + std::to_string(job.attempts) + " times and was given up",
                m_clock.nowSeconds(), job.attempts);
        });
    }
}

void JobRunner::start() {
    recover(!m_options.sharedDatabase);
    {
        std::lock_guard lock(m_mutex);
        m_stopping = false;
        for (int i = 0; i < m_options.workers; ++i) m_threads.emplace_back([this] { workerLoop(); });
        m_heartbeat = std::thread([this] { heartbeatLoop(); });
        m_started = true;
    }
    advertise();  // an API server lists this server's models from now on, not from the first heartbeat
}

std::optional<std::vector<std::string>> JobRunner::claimableModels() const {
    if (!m_options.sharedDatabase) return std::nullopt;
    std::vector<std::string> ids;
    for (const auto& m : m_generator.models()) {
        if (m.category == "stable_diffusion") ids.push_back(m.id);
    }
    return ids;
}

void JobRunner::advertise() {
    if (!m_options.sharedDatabase || m_options.workers == 0) return;
    try {
        storage::WorkerRepository(m_db).advertise(
            m_options.workerId, m_clock.nowSeconds(), advertisedModels(m_generator),
            m_measured.load() ? std::optional<double>(m_secondsPerImage.load()) : std::nullopt);
    } catch (const std::exception& e) {
        std::cerr << "easel: advertising this worker's models: " << e.what() << '\n';
    }
}

void JobRunner::stop() {
    {
        std::lock_guard lock(m_mutex);
        if (!m_started) return;
        m_started = false;
        m_stopping = true;
        for (auto& [id, r] : m_running) r->cancel = true;
    }
    m_workAvailable.notify_all();
    m_heartbeatWake.notify_all();
    for (auto& t : m_threads) t.join();
    m_threads.clear();
    if (m_heartbeat.joinable()) m_heartbeat.join();
    if (m_options.sharedDatabase && m_options.workers > 0) {
        try {
            storage::WorkerRepository(m_db).retire(m_options.workerId);
        } catch (const std::exception& e) {
            std::cerr << "easel: retiring this worker: " << e.what() << '\n';
        }
    }
}

void JobRunner::heartbeatLoop() {
    const auto period = std::chrono::milliseconds(m_options.leaseSeconds * 1000 / 3);
    std::unique_lock lock(m_mutex);
    while (!m_stopping) {
        m_heartbeatWake.wait_for(lock, period, [&] { return m_stopping || m_heartbeatKick; });
        if (m_stopping) return;
        m_heartbeatKick = false;
        std::vector<std::pair<std::int64_t, int>> mine;
        for (const auto& [id, r] : m_running) mine.emplace_back(id, r->attempt);
        lock.unlock();
        std::vector<std::int64_t> stop;
        try {
            m_jobs.renewLeases(m_options.workerId, m_clock.nowSeconds() + m_options.leaseSeconds);
            advertise();
            stop = m_jobs.toStop(mine);
            recover(false);  // other servers' jobs whose lease ran out
        } catch (const std::exception& e) {
            std::cerr << "easel: job leases: " << e.what() << '\n';
        }
        lock.lock();
        for (const auto id : stop) {
            const auto it = m_running.find(id);
            if (it == m_running.end() || it->second->cancel.exchange(true)) continue;
            ++m_stats.stoppedByHeartbeat;
        }
        m_workAvailable.notify_all();
    }
}

void JobRunner::notify() { m_workAvailable.notify_all(); }

void JobRunner::wakeHeartbeat() {
    {
        std::lock_guard lock(m_mutex);
        m_heartbeatKick = true;
    }
    m_heartbeatWake.notify_all();
}

void JobRunner::workerLoop() {
    for (;;) {
        std::optional<storage::JobRow> job;
        std::shared_ptr<Running> state;
        {
            std::unique_lock lock(m_mutex);
            if (m_stopping) return;
            // Claimed and registered as running in one step under the lock: cancel() and
            // cancelAllOf() first cancel queued rows in the database, then look at m_running, so a job
            // claimed in between would otherwise be in neither place (its cancel lost, or an account
            // purge not waiting for it).
            try {
                job = m_jobs.claimNext(m_clock.nowSeconds(), m_maxRunningFor, storage::JobFamily::Generation,
                                       {m_options.workerId, m_options.leaseSeconds}, claimableModels());
            } catch (const std::exception& e) {
                std::cerr << "easel: job queue: " << e.what() << '\n';
            }
            if (!job) {
                // Poll now and then too: another process (the admin CLI) or a finished job may have
                // made a queued job runnable without a notify.
                m_workAvailable.wait_for(lock, std::chrono::milliseconds(500));
                continue;
            }
            state = std::make_shared<Running>();
            state->userId = job->userId;
            state->attempt = job->attempts;
            m_running[job->id] = state;
        }
        run(std::move(*job), std::move(state));
    }
}

void JobRunner::discardImages(const storage::JobRow& job) {
    for (const auto& img : m_jobs.imagesOf(job.id)) m_blobs.remove(job.userId, img.token + ".png");
    m_jobs.removeImagesOf(job.id);
}

void JobRunner::run(storage::JobRow job, std::shared_ptr<Running> state) {
    // Lost: another worker took the job over (this one's lease ran out); nothing of this run counts.
    enum class Outcome { Succeeded, Failed, Cancelled, Requeued, Lost } outcome = Outcome::Failed;
    // Whether another worker claimed the job again since this run's claim (this one's lease ran out).
    auto takenOver = [&] {
        const auto row = m_jobs.find(job.id);
        return row && row->attempts != job.attempts;
    };
    std::string error;
    bool timedOut = false;
    GenerationParams params;
    try {
        params = paramsFromJson(nlohmann::json::parse(job.request));
        // The model resolved at submission (the API server's default may not be this server's).
        if (params.modelId.empty() && m_options.sharedDatabase) params.modelId = job.modelId;
        {
            std::lock_guard lock(m_mutex);  // progress() copies it from other threads
            state->progress.samples = params.samples;
        }
        discardImages(job);  // a previous, interrupted attempt

        std::optional<Bytes> init, mask;
        if (!params.initBlob.empty()) init = m_blobs.get(job.userId, params.initBlob);
        if (!params.maskBlob.empty()) mask = m_blobs.get(job.userId, params.maskBlob);
        if (!params.initBlob.empty() && !init) throw std::runtime_error("the init image is no longer stored");
        if (!params.maskBlob.empty() && !mask) throw std::runtime_error("the mask image is no longer stored");
        const auto t0 = std::chrono::steady_clock::now();
        auto lastReport = t0;
        // Several servers: the progress is also written for the other servers' fetches, now and then.
        bool progressWritten = false;
        auto lastProgressWrite = t0;
        std::optional<JobProgress> shared;
        auto saveProgress = [&](const storage::JobRow& j, const JobProgress& p) {
            progressWritten = true;
            lastProgressWrite = std::chrono::steady_clock::now();
            storage::ProgressRow row;
            row.attempt = j.attempts;
            row.step = p.step;
            row.total = p.total;
            row.sample = p.sample;
            row.samples = p.samples;
            if (p.preview) row.preview = *p.preview;
            row.updatedAt = m_clock.nowSeconds();
            try {
                m_jobs.saveProgress(j.id, row);
            } catch (const std::exception& e) {  // only others' fetches miss it; the job goes on
                std::cerr << "easel: recording the progress of job " << j.id << ": " << e.what() << '\n';
            }
        };
        const auto startedAt = m_clock.nowSeconds();
        auto result = m_generator.generate(
            params, init ? &*init : nullptr, mask ? &*mask : nullptr, [&](const GenerationStep& g) {
                if (m_options.maxJobSeconds > 0 && m_clock.nowSeconds() - startedAt > m_options.maxJobSeconds) {
                    timedOut = true;
                    return false;  // stops at this step; failed and refunded below
                }
                // Copy the preview before taking the lock.
                auto preview = g.previewPng != nullptr ? std::make_shared<const Bytes>(*g.previewPng) : nullptr;
                const auto reportedAt = std::chrono::steady_clock::now();
                const double stepSeconds = std::chrono::duration<double>(reportedAt - lastReport).count();
                lastReport = reportedAt;
                {
                    std::lock_guard lock(m_mutex);
                    const auto& bounds = Stats::kStepBuckets;
                    const auto bucket = static_cast<std::size_t>(
                        std::lower_bound(bounds.begin(), bounds.end(), stepSeconds) - bounds.begin());
                    ++m_stats.stepBuckets[bucket];
                    ++m_stats.steps;
                    m_stats.stepSecondsSum += stepSeconds;
                    if (g.sample != state->progress.sample) state->progress.preview.reset();
                    state->progress.step = g.step;
                    state->progress.total = g.total;
                    state->progress.sample = g.sample;
                    if (preview) state->progress.preview = std::move(preview);
                    if (m_options.sharedDatabase &&
                        (!progressWritten || g.step == g.total ||
                         std::chrono::duration<double>(reportedAt - lastProgressWrite).count() >=
                             m_options.progressWriteSeconds)) {
                        shared = state->progress;
                    }
                }
                if (shared) saveProgress(job, *std::exchange(shared, std::nullopt));
                return !state->cancel.load();
            });
        if (state->cancel.load()) throw GenerationCancelledError();  // asked to stop right at the end
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto now = m_clock.nowSeconds();
        const auto expires = now + (job.temp ? m_options.tempRetentionSeconds : m_options.retentionSeconds);
        std::vector<std::string> written;
        bool recorded = false;
        try {
            for (std::size_t i = 0; i < result.pngs.size(); ++i) {
                // The links promised in future_links; a job from before they existed gets new ones.
                const auto token = i < params.imageTokens.size() ? params.imageTokens[i] : randomToken();
                try {
                    m_blobs.put(job.userId, token + ".png", result.pngs[i]);
                } catch (const std::exception& e) {
                    // The detail (a path on this server) goes to the log; the user gets what happened.
                    std::cerr << "easel: storing an image of job " << job.id << ": " << e.what() << '\n';
                    const auto* sys = dynamic_cast<const std::system_error*>(&e);
                    throw std::runtime_error(sys != nullptr && sys->code() == std::errc::no_space_on_device
                                                 ? "the server ran out of disk space while storing the images"
                                                 : "the server could not store the images");
                }
                written.push_back(token);
            }
            recorded = m_ledger.completeWithUsage(job.userId, job.id, job.kind, job.images, now, [&] {
                // Only a job still running succeeds: one cancelled meanwhile keeps its refund and
                // gets no images.
                if (!m_jobs.markSucceeded(job.id, result.meta.dump(), seconds, now, job.attempts)) return false;
                for (std::size_t i = 0; i < written.size(); ++i) {
                    m_jobs.insertImage({0, job.id, job.userId, static_cast<int>(i), written[i], expires,
                                        static_cast<std::int64_t>(result.pngs[i].size())},
                                       now);
                }
                return true;
            });
        } catch (...) {
            // The account was deleted meanwhile (foreign key) or the disk failed: leave no orphan file.
            for (const auto& token : written) m_blobs.remove(job.userId, token + ".png");
            throw;
        }
        if (!recorded) {
            if (takenOver()) {
                // Another worker runs (or ran) it again under the same image names: leave its files.
                outcome = Outcome::Lost;
                throw GenerationCancelledError();
            }
            for (const auto& token : written) m_blobs.remove(job.userId, token + ".png");
            throw GenerationCancelledError();
        }
        const double perImage = seconds / static_cast<double>(std::max<std::size_t>(1, result.pngs.size()));
        // The first image measured replaces the prior guess; later ones move the average.
        m_secondsPerImage = m_measured.exchange(true) ? 0.7 * m_secondsPerImage.load() + 0.3 * perImage : perImage;
        {
            std::lock_guard lock(m_mutex);
            m_stats.imagesGenerated += result.pngs.size();
        }
        outcome = Outcome::Succeeded;
    } catch (const GenerationCancelledError&) {
        std::lock_guard lock(m_mutex);
        if (outcome != Outcome::Lost) outcome = m_stopping ? Outcome::Requeued : Outcome::Cancelled;
        if (timedOut && outcome == Outcome::Cancelled) {
            outcome = Outcome::Failed;
            error = "the job ran longer than this server's limit of " + std::to_string(m_options.maxJobSeconds) + " s";
        }
    } catch (const std::exception& e) {
        error = e.what();
    } catch (...) {
        error = "unknown error";
    }

    try {
        const auto now = m_clock.nowSeconds();
        switch (outcome) {
            case Outcome::Succeeded:
            case Outcome::Lost:
                break;
            case Outcome::Requeued:
                m_jobs.requeue(job.id, job.attempts);
                break;
            case Outcome::Cancelled:
            case Outcome::Failed: {
                const bool ended = m_ledger.endWithRefund(job.userId, job.images, [&] {
                    return outcome == Outcome::Cancelled ? m_jobs.markCancelled(job.id, now, job.attempts)
                                                         : m_jobs.markFailed(job.id, error, now, job.attempts);
                });
                // Not ended because another worker runs it again: its inputs and hook are that run's.
                if (!ended && takenOver()) outcome = Outcome::Lost;
                break;
            }
        }
        {
            std::lock_guard lock(m_mutex);
            ++m_stats.jobsEnded[outcome == Outcome::Succeeded   ? "succeeded"
                                : outcome == Outcome::Requeued  ? "requeued"
                                : outcome == Outcome::Cancelled ? "cancelled"
                                : outcome == Outcome::Lost      ? "lost"
                                                                : "failed"];
        }
        if (m_options.sharedDatabase) m_jobs.clearProgress(job.id, job.attempts);
        // The inputs are not needed once the job has ended (a re-queued job needs them again).
        if (outcome != Outcome::Requeued && outcome != Outcome::Lost) {
            if (!params.initBlob.empty()) m_blobs.remove(job.userId, params.initBlob);
            if (!params.maskBlob.empty()) m_blobs.remove(job.userId, params.maskBlob);
        }
    } catch (const std::exception& e) {
        std::cerr << "easel: recording the outcome of job " << job.id << ": " << e.what() << '\n';
    }
    finish(job.id);
    try {
        if (m_finishedHook && outcome != Outcome::Requeued && outcome != Outcome::Lost) {
            if (const auto row = m_jobs.find(job.id)) m_finishedHook(*row);
        }
    } catch (const std::exception& e) {
        std::cerr << "easel: after job " << job.id << ": " << e.what() << '\n';
    }
    m_workAvailable.notify_all();  // the owner's concurrency slot is free again
}

void JobRunner::finish(std::int64_t jobId) {
    {
        std::lock_guard lock(m_mutex);
        m_running.erase(jobId);
        ++m_finishedCount;
    }
    m_jobFinished.notify_all();
}

bool JobRunner::cancel(std::int64_t jobId) {
    {
        std::lock_guard lock(m_mutex);
        const auto it = m_running.find(jobId);
        if (it != m_running.end()) {
            it->second->cancel = true;
            return true;
        }
    }
    const auto job = m_jobs.find(jobId);
    if (job && job->status == storage::JobStatus::Running) {
        // Another server runs it: its heartbeat stops it.
        if (!m_jobs.requestCancel(jobId)) return false;
        wakeHeartbeat();  // when it is this server's after all (claimed just now), stop it now
        return true;
    }
    if (!job || job->status != storage::JobStatus::Queued) return false;
    const bool cancelled = m_ledger.endWithRefund(job->userId, job->images,
                                                  [&] { return m_jobs.cancelIfQueued(jobId, m_clock.nowSeconds()); });
    if (!cancelled) {
        // A worker claimed it in between: ask that run to stop instead.
        std::lock_guard lock(m_mutex);
        const auto it = m_running.find(jobId);
        if (it == m_running.end()) return false;
        it->second->cancel = true;
        return true;
    }
    const auto params = paramsFromJson(nlohmann::json::parse(job->request));
    if (!params.initBlob.empty()) m_blobs.remove(job->userId, params.initBlob);
    if (!params.maskBlob.empty()) m_blobs.remove(job->userId, params.maskBlob);
    {
        std::lock_guard lock(m_mutex);
        ++m_finishedCount;
    }
    m_jobFinished.notify_all();
    try {
        if (m_finishedHook) {
            if (const auto row = m_jobs.find(jobId)) m_finishedHook(*row);
        }
    } catch (const std::exception& e) {
        std::cerr << "easel: after cancelling job " << jobId << ": " << e.what() << '\n';
    }
    return true;
}

void JobRunner::cancelAllOf(std::int64_t userId) {
    m_jobs.cancelQueuedOf(userId, m_clock.nowSeconds());
    {
        std::unique_lock lock(m_mutex);
        for (auto& [id, r] : m_running) {
            if (r->userId == userId) r->cancel = true;
        }
        m_jobFinished.wait(lock, [&] {
            for (const auto& [id, r] : m_running) {
                if (r->userId == userId) return false;
            }
            return true;
        });
    }
    if (!m_options.sharedDatabase) return;
    // Jobs that other servers run: their heartbeats stop them (a third of a lease, plus the step under
    // way). Waits until none runs with a live lease; a dead server's job has nobody to wait for.
    m_jobs.requestCancelOf(userId, storage::JobFamily::Generation);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(m_options.leaseSeconds) + std::chrono::seconds(10);
    while (m_jobs.liveRunningCount(userId, m_clock.nowSeconds()) > 0 && std::chrono::steady_clock::now() < deadline) {
        std::unique_lock lock(m_mutex);
        if (m_waitersReleased) return;  // shutting down
        m_jobFinished.wait_for(lock, std::chrono::milliseconds(250));
    }
}

int JobRunner::cancelAllQueued() {
    int n = 0;
    for (const auto id : m_jobs.queuedIds()) n += cancel(id) ? 1 : 0;
    return n;
}

std::optional<JobProgress> JobRunner::progress(std::int64_t jobId) const {
    {
        std::lock_guard lock(m_mutex);
        const auto it = m_running.find(jobId);
        if (it != m_running.end()) return it->second->progress;
    }
    if (!m_options.sharedDatabase) return std::nullopt;
    // Another server runs it: what that server last wrote.
    try {
        auto row = m_jobs.progressOf(jobId);
        if (!row) return std::nullopt;
        JobProgress p;
        p.step = row->step;
        p.total = row->total;
        p.sample = row->sample;
        p.samples = row->samples;
        if (row->preview) p.preview = std::make_shared<const Bytes>(std::move(*row->preview));
        return p;
    } catch (const std::exception& e) {
        std::cerr << "easel: reading the progress of job " << jobId << ": " << e.what() << '\n';
        return std::nullopt;
    }
}

double JobRunner::secondsPerImage() const {
    if (!m_options.sharedDatabase || m_measured.load()) return m_secondsPerImage.load();
    std::lock_guard lock(m_etaMutex);
    const auto now = std::chrono::steady_clock::now();
    if (m_etaReadAt == std::chrono::steady_clock::time_point{} || now - m_etaReadAt >= std::chrono::seconds(2)) {
        m_etaReadAt = now;
        try {
            double sum = 0;
            int n = 0;
            // Workers heard from within a lease: alive.
            for (const auto& w :
                 storage::WorkerRepository(m_db).seenSince(m_clock.nowSeconds() - m_options.leaseSeconds)) {
                if (w.secondsPerImage && *w.secondsPerImage > 0) {
                    sum += *w.secondsPerImage;
                    ++n;
                }
            }
            m_etaOfWorkers = n > 0 ? sum / n : m_secondsPerImage.load();
        } catch (const std::exception& e) {
            std::cerr << "easel: reading the workers' speed: " << e.what() << '\n';
        }
    }
    return m_etaOfWorkers;
}

int JobRunner::runningCount() const {
    std::lock_guard lock(m_mutex);
    return static_cast<int>(m_running.size());
}

bool JobRunner::waitFinished(std::int64_t jobId, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto finished = [&] {
        const auto job = m_jobs.find(jobId);
        return !job || (job->status != storage::JobStatus::Queued && job->status != storage::JobStatus::Running);
    };
    std::unique_lock lock(m_mutex);
    for (;;) {
        lock.unlock();
        const bool done = finished();
        lock.lock();
        if (done) return true;
        if (m_waitersReleased || std::chrono::steady_clock::now() >= deadline) return false;
        const auto seen = m_finishedCount;
        m_jobFinished.wait_until(lock,
                                 std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(250)),
                                 [&] { return m_finishedCount != seen || m_waitersReleased; });
    }
}

void JobRunner::releaseWaiters() {
    {
        std::lock_guard lock(m_mutex);
        m_waitersReleased = true;
    }
    m_jobFinished.notify_all();
}

int JobRunner::sweepExpired() {
    const auto now = m_clock.nowSeconds();
    int removed = 0;
    for (const auto& img : m_jobs.expiredImages(now)) {
        m_blobs.remove(img.userId, img.token + ".png");
        m_jobs.removeImage(img.id);
        ++removed;
    }
    for (const auto& [owner, token] : m_jobs.takeExpiredUploads(now)) m_blobs.remove(owner, token);
    return removed;
}

int JobRunner::sweepOrphans(std::int64_t minAgeSeconds) {
    int removed = 0;
    for (const auto owner : m_blobs.owners()) {
        // Files first, rows second: a file written after the listing is not looked at, and a row
        // committed after the listing is seen by the queries below.
        const auto blobs = m_blobs.list(owner);
        auto known = m_jobs.storedBlobNames(owner);
        for (const auto& job : m_jobs.listForUser(owner, std::numeric_limits<int>::max(), 0, true)) {
            try {
                const auto params = paramsFromJson(nlohmann::json::parse(job.request));
                known.insert(params.initBlob);
                known.insert(params.maskBlob);
            } catch (const std::exception&) {
                // An unreadable request fails when it runs; its inputs are not needed.
            }
        }
        // Several servers: the inputs of trainings waiting for a server with a trainer, and the files of
        // trained models published to every server.
        for (const auto& job :
             m_jobs.listForUser(owner, std::numeric_limits<int>::max(), 0, true, storage::JobFamily::Training)) {
            try {
                for (auto& name : trainingJobFromJson(nlohmann::json::parse(job.request)).inputBlobs)
                    known.insert(std::move(name));
            } catch (const std::exception&) {
                // As above.
            }
        }
        for (const auto& install : storage::ModelInstallRepository(m_db).loadsOf(owner)) {
            for (auto& name : publishedBlobs(install.source)) known.insert(std::move(name));
        }
        for (const auto& blob : blobs) {
            if (blob.ageSeconds < minAgeSeconds || known.contains(blob.name)) continue;
            m_blobs.remove(owner, blob.name);
            ++removed;
        }
    }
    return removed;
}

JobRunner::Stats JobRunner::stats() const {
    std::lock_guard lock(m_mutex);
    return m_stats;
}

}  // namespace easel::jobs
