#pragma once
// Workers that take jobs from the persistent queue (priority, then FIFO; per-account concurrency
// caps), run them through the ImageGenerator off the HTTP threads, store the PNGs, and record the
// outcome. A failed or cancelled job gives its charge back. After a crash, start() re-queues every
// job that was running (at-least-once), removing the images of the interrupted attempt first, so
// nothing is lost, duplicated or charged twice. A job that crashed the process maxAttempts times is
// failed instead of crashing it forever.
// Where several servers share one database (PostgreSQL), each claimed job carries a lease that a
// heartbeat renews; a job whose lease ran out is re-queued by whichever server sees it first, and the
// old run, should it still be alive, is fenced off by its attempt number. The heartbeat also stops
// local jobs that another server was asked to cancel.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "jobs/image_generator.h"
#include "quota/quota_ledger.h"
#include "storage/blob_store.h"
#include "storage/database.h"
#include "storage/job_repository.h"

namespace easel::jobs {

struct JobRunnerOptions {
    // Threads that run jobs; 0 on an API-only server (it queues jobs for the workers of other servers).
    int workers = 1;
    std::int64_t retentionSeconds = 30 * 24 * 3600;  // the hosted service keeps images 30 days
    std::int64_t tempRetentionSeconds = 24 * 3600;   // "temp": true
    int maxAttempts = 3;
    // A job still running after this long (on the injected Clock) is stopped at its next step and
    // failed (refunded); 0: no limit.
    std::int64_t maxJobSeconds = 1800;
    // This process's name on the leases of the jobs it runs ("": host, pid and a random part).
    std::string workerId;
    // A running job's lease (on the Clock): renewed every leaseSeconds / 3 while the job runs. Any
    // server re-queues a job whose lease ran out, since its worker died (kill -9, a lost network).
    std::int64_t leaseSeconds = 60;
    // Several servers share the database: at start only jobs with an expired lease are re-queued, not
    // every running one (those may be other servers' work). The workers then claim only jobs on models
    // their generator has, and the heartbeat advertises those models (the workers table).
    bool sharedDatabase = false;
    // Several servers: a running job's progress (and preview) is written to the database for the others'
    // fetches at most this often (seconds; 0: at every step).
    double progressWriteSeconds = 0.5;
};

struct JobProgress {
    int step = 0;
    int total = 0;
    int sample = 0;
    int samples = 1;
    std::shared_ptr<const Bytes> preview;  // latest preview PNG of the running sample, if the model makes one
};

class JobRunner {
public:
    using MaxRunningFor = std::function<int(std::int64_t userId)>;
    using FinishedHook = std::function<void(const storage::JobRow&)>;

    JobRunner(const storage::Database& db, storage::BlobStore& blobs, ImageGenerator& generator, const Clock& clock,
              JobRunnerOptions options, MaxRunningFor maxRunningFor);
    ~JobRunner();
    JobRunner(const JobRunner&) = delete;
    JobRunner& operator=(const JobRunner&) = delete;

    // Recovers what a crash left running, then starts the workers.
    void start();
    // Stops the workers; a job in progress goes back to the queue (it runs again on the next start).
    void stop();
    // New work was queued.
    void notify();
    // A cancel was requested (perhaps of a job this server runs): look now, not at the next heartbeat.
    void wakeHeartbeat();

    // A queued job is cancelled (and refunded) at once; a running one is asked to stop and is
    // cancelled when it does. False when the job is unknown or already finished.
    bool cancel(std::int64_t jobId);
    // Cancels everything of the account and waits until none of its jobs runs (account purge).
    void cancelAllOf(std::int64_t userId);
    // Cancels (and refunds) every queued job of every account; returns how many.
    int cancelAllQueued();

    std::optional<JobProgress> progress(std::int64_t jobId) const;
    // Waits until the job has finished (any final state) or the timeout passed; true if finished.
    bool waitFinished(std::int64_t jobId, std::chrono::milliseconds timeout);
    // Ends every waitFinished() now (they return false) and makes later ones return at once: the
    // server is shutting down and must not hold its HTTP workers for a sync wait.
    void releaseWaiters();
    // Seconds one image took recently (for ETAs): this server's measure, or, on a server that has not
    // generated any (an API-only one), the mean of what the live workers advertise.
    double secondsPerImage() const;

    // What this process has done since it started, for /metrics.
    struct Stats {
        std::uint64_t imagesGenerated = 0;
        // "succeeded", "failed", "cancelled", "requeued", "lost" (another worker took it over)
        std::map<std::string, std::uint64_t> jobsEnded;
        // Running jobs the heartbeat stopped: cancelled from another server, or taken over after the
        // lease ran out.
        std::uint64_t stoppedByHeartbeat = 0;
        // Seconds between two progress reports of a job (one denoising step; the first also holds the
        // text encoding), as a histogram with upper bounds kStepBuckets (the last is +Inf).
        static constexpr std::array<double, 9> kStepBuckets{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
        std::array<std::uint64_t, 10> stepBuckets{};  // cumulative counts are made when printed
        std::uint64_t steps = 0;
        double stepSecondsSum = 0;
    };
    Stats stats() const;
    int runningCount() const;
    // This process's name on leases and in the workers table.
    const std::string& workerId() const { return m_options.workerId; }

    void setFinishedHook(FinishedHook hook) { m_finishedHook = std::move(hook); }

    // Deletes images and uploads past their retention (files and rows). Returns images deleted.
    int sweepExpired();
    // Deletes stored files that no database row refers to and that are at least minAgeSeconds old:
    // what a process killed between writing a file and committing its row left behind (generated
    // PNGs, temporary files of interrupted writes, inputs of refused requests). Younger files may
    // belong to a write whose row is about to be committed. Returns files deleted.
    int sweepOrphans(std::int64_t minAgeSeconds = 3600);

private:
    struct Running {
        std::int64_t userId = 0;
        int attempt = 0;
        std::atomic<bool> cancel{false};
        JobProgress progress;
    };

    void workerLoop();
    void heartbeatLoop();
    // Re-queues (or fails, past maxAttempts) jobs whose worker died: all running ones, or only those
    // whose lease ran out.
    void recover(bool allRunning);
    void run(storage::JobRow job, std::shared_ptr<Running> state);
    void finish(std::int64_t jobId);
    void discardImages(const storage::JobRow& job);

    const storage::Database& m_db;
    storage::BlobStore& m_blobs;
    ImageGenerator& m_generator;
    const Clock& m_clock;
    JobRunnerOptions m_options;
    MaxRunningFor m_maxRunningFor;
    FinishedHook m_finishedHook;
    storage::JobRepository m_jobs;
    // Ids of the models this server may claim jobs for (shared database), nullopt: any.
    std::optional<std::vector<std::string>> claimableModels() const;
    void advertise();
    quota::QuotaLedger m_ledger;

    mutable std::mutex m_mutex;
    std::condition_variable m_workAvailable;
    std::condition_variable m_jobFinished;
    std::map<std::int64_t, std::shared_ptr<Running>> m_running;
    std::vector<std::thread> m_threads;
    std::thread m_heartbeat;
    std::condition_variable m_heartbeatWake;
    bool m_heartbeatKick = false;
    bool m_stopping = false;
    bool m_started = false;  // between start() and stop()
    bool m_waitersReleased = false;
    std::uint64_t m_finishedCount = 0;
    std::atomic<double> m_secondsPerImage{1.0};
    std::atomic<bool> m_measured{false};  // m_secondsPerImage comes from images generated here
    // The workers' mean, read from the workers table at most every few seconds.
    mutable std::mutex m_etaMutex;
    mutable std::chrono::steady_clock::time_point m_etaReadAt{};
    mutable double m_etaOfWorkers = 1.0;
    Stats m_stats;  // guarded by m_mutex
};

}  // namespace easel::jobs
