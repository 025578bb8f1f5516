#pragma once
// Rows of the jobs and images tables: the persistent queue. A job is charged when inserted and is
// never inserted twice for one Idempotency-Key, so a crash can re-run it without charging again.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "storage/database.h"

namespace easel::storage {

enum class JobStatus { Queued, Running, Succeeded, Failed, Cancelled };
const char* jobStatusName(JobStatus s);
JobStatus parseJobStatus(const std::string& s);

// Generation jobs (text2img, img2img, inpaint) and fine-tunes (kinds "fine_tune", "lora_fine_tune") share
// the table but never a worker, a queue position or a listing: every query that picks jobs takes the
// family it is about (generation by default), so a generation worker never claims a training and the
// image history never shows one.
enum class JobFamily { Generation, Training };
inline constexpr const char* kFineTuneKind = "fine_tune";
inline constexpr const char* kLoraFineTuneKind = "lora_fine_tune";
JobFamily familyOf(const std::string& kind);

struct JobRow {
    std::int64_t id = 0;
    std::int64_t userId = 0;
    std::string kind;
    JobStatus status = JobStatus::Queued;
    int priority = 0;
    int images = 0;
    std::string request;  // JSON
    std::string meta;     // JSON, once known
    std::string error;
    std::string trackId;
    std::string webhook;
    bool temp = false;
    int attempts = 0;
    std::string idempotencyKey;
    std::int64_t createdAt = 0;
    std::optional<std::int64_t> startedAt, finishedAt;
    double generationSeconds = 0;
    // The model it runs on (generations; empty for the default model and for trainings): a worker
    // that filters its claims by model (ClaimFilter) takes only jobs whose model it has loaded.
    std::string modelId;
    // The server that must run it ("": any). Several servers: a training runs where it was submitted,
    // since its inputs and checkpoints are in that server's data dir (TrainingRunnerOptions::home).
    std::string home;
};

struct ImageRow {
    std::int64_t id = 0;
    std::int64_t jobId = 0;
    std::int64_t userId = 0;
    int index = 0;
    std::string token;
    std::int64_t expiresAt = 0;
    std::int64_t bytes = 0;  // of the PNG, for the plan's storage cap
};

// Who runs a claimed job and for how long it is presumed alive without a renewal (JobRunner renews it
// while the job runs). Another server re-queues a job whose lease ran out: its worker died.
struct Lease {
    std::string owner;
    std::int64_t seconds = 60;
};

// What a running job has done so far, as the server that runs it last wrote it (several servers).
struct ProgressRow {
    int attempt = 0;  // the run that wrote it: JobRow::attempts at its claim
    int step = 0;
    int total = 0;
    int sample = 0;
    int samples = 1;
    std::optional<Blob> preview;  // PNG of the running sample
    std::int64_t updatedAt = 0;
};

class JobRepository {
public:
    explicit JobRepository(const Database& db) : m_db(db) {}

    std::int64_t insert(const JobRow& row) const;
    std::optional<JobRow> find(std::int64_t id) const;
    std::optional<JobRow> findByIdempotencyKey(std::int64_t userId, const std::string& key) const;
    // Queued plus running jobs of the user.
    int activeCount(std::int64_t userId, JobFamily family = JobFamily::Generation) const;
    // Trainings that count against the plan's training quota: queued, running or succeeded (a failed or
    // cancelled one gives its charge back by its status alone; deleting the trained model does not).
    int trainingsCharged(std::int64_t userId) const;
    // Where a queued job stands: the queued jobs that run before it (0 = next), and the images that run
    // before it (those of running jobs and of the queued jobs ahead, samples counted), in its family.
    struct QueueStanding {
        int position = 0;
        std::int64_t imagesAhead = 0;
    };
    QueueStanding queueStanding(const JobRow& job) const;
    int queuedTotal(JobFamily family = JobFamily::Generation) const;
    // Jobs in the table per status name ("queued", "running", "succeeded", ...), for /metrics.
    std::map<std::string, std::int64_t> countByStatus() const;
    std::vector<std::int64_t> queuedIds(JobFamily family = JobFamily::Generation) const;

    // The next queued job by priority then age whose owner runs fewer than `maxConcurrentFor(plan)`
    // jobs (of that family), marked running in the same transaction. `maxRunning` maps a user id to their cap.
    // `lease`: the claim is held by lease.owner until now + lease.seconds.
    // `models`: only jobs on one of these models or on the default one (model_id NULL); nullopt: any.
    // `home`: only jobs of that home or of none, and one of none becomes that home's; "": any.
    std::optional<JobRow> claimNext(std::int64_t now, const std::function<int(std::int64_t userId)>& maxRunning,
                                    JobFamily family = JobFamily::Generation, const Lease& lease = {},
                                    const std::optional<std::vector<std::string>>& models = std::nullopt,
                                    const std::string& home = {}) const;
    // Every running job of this owner is presumed alive until `until`; returns how many.
    int renewLeases(const std::string& owner, std::int64_t until) const;
    // Of these jobs, those that this worker should stop: cancelled by a request (cancel_requested,
    // from any process) or no longer its attempt (ended, or re-queued after its lease ran out).
    std::vector<std::int64_t> toStop(const std::vector<std::pair<std::int64_t, int>>& jobAttempts) const;
    // Records a running job's progress for the other servers' fetches. A run taken over (an older
    // attempt than the one recorded) changes nothing.
    void saveProgress(std::int64_t id, const ProgressRow& progress) const;
    // The progress of the job's current run while it runs; nullopt for a job not running or a row
    // left by an earlier run.
    std::optional<ProgressRow> progressOf(std::int64_t id) const;
    // The run ended: its row goes (only that run's).
    void clearProgress(std::int64_t id, int attempt) const;
    // Of the account's jobs, those running on some server whose lease still holds at `now`.
    int liveRunningCount(std::int64_t userId, std::int64_t now, JobFamily family = JobFamily::Generation) const;

    // A cancel for a job that some server runs: its worker stops it at the next heartbeat. False when the
    // job is not running.
    bool requestCancel(std::int64_t id) const;
    // The same for every running job of the account in that family (its purge); returns how many.
    int requestCancelOf(std::int64_t userId, JobFamily family) const;

    // Inside a transaction: waits until no other server is claiming or queueing for this owner and keeps
    // them out until it ends (PostgreSQL; SQLite's write lock already does). For checks that count the
    // owner's jobs before changing them.
    void lockOwner(std::int64_t userId) const;

    // The end of a run. `attempt` (the worker's own, JobRow::attempts at its claim) fences a worker whose
    // lease ran out: once another worker has claimed the job again, the old run changes nothing.
    // Only a running job succeeds; false when it was cancelled meanwhile.
    bool markSucceeded(std::int64_t id, const std::string& meta, double seconds, std::int64_t now,
                       std::optional<int> attempt = std::nullopt) const;
    // Only a queued or running job fails or is cancelled; returns false when it had already finished.
    bool markFailed(std::int64_t id, const std::string& error, std::int64_t now,
                    std::optional<int> attempt = std::nullopt) const;
    bool markCancelled(std::int64_t id, std::int64_t now, std::optional<int> attempt = std::nullopt) const;
    // Only while still queued (a worker may have claimed it meanwhile).
    bool cancelIfQueued(std::int64_t id, std::int64_t now) const;
    // After a crash: running -> queued, except jobs that already used `maxAttempts` (they are returned,
    // still running, for the caller to fail and refund).
    // `home`: only the running jobs of that home ("": all).
    std::vector<JobRow> requeueRunning(int maxAttempts, JobFamily family = JobFamily::Generation,
                                       const std::string& home = {}) const;
    // The same for jobs whose lease ran out before `now` (their worker died) or that have none, other
    // than `exceptOwner`'s.
    std::vector<JobRow> requeueExpired(std::int64_t now, int maxAttempts, const std::string& exceptOwner,
                                       JobFamily family = JobFamily::Generation) const;
    // Running jobs of `family` claimed with a lease that ran out before `now`, other than `exceptOwner`'s:
    // back to the queue (their home kept), into `requeued`; those that used `maxAttempts` are returned.
    std::vector<JobRow> requeueExpiredLeases(std::int64_t now, int maxAttempts, const std::string& exceptOwner,
                                             JobFamily family, std::vector<JobRow>& requeued) const;
    // A queued job's home ("": none, any server may claim it). False when it is no longer queued.
    bool setHome(std::int64_t id, const std::string& home) const;
    // One running job back to the queue (the server is stopping mid-job).
    void requeue(std::int64_t id, std::optional<int> attempt = std::nullopt) const;
    // Every queued job of the user -> cancelled; returns their ids.
    std::vector<std::int64_t> cancelQueuedOf(std::int64_t userId, std::int64_t now,
                                             JobFamily family = JobFamily::Generation) const;

    std::vector<JobRow> listForUser(std::int64_t userId, int limit, int offset, bool activeOnly,
                                    JobFamily family = JobFamily::Generation) const;
    std::int64_t countForUser(std::int64_t userId, JobFamily family = JobFamily::Generation) const;
    // Replaces the meta JSON of a job in any state (a training's loss curve while it runs, a deleted mark).
    // `attempt`: only while the job is still at that attempt (a run that was taken over writes nothing).
    void setMeta(std::int64_t id, const std::string& meta, std::optional<int> attempt = std::nullopt) const;
    void remove(std::int64_t id) const;

    void insertImage(const ImageRow& row, std::int64_t now) const;
    std::vector<ImageRow> imagesOf(std::int64_t jobId) const;
    std::optional<ImageRow> imageByToken(const std::string& token) const;
    void removeImagesOf(std::int64_t jobId) const;
    std::vector<ImageRow> expiredImages(std::int64_t now) const;
    void removeImage(std::int64_t id) const;

    // Uploaded init/mask images (base64_to_url): blob name = token.
    void insertUpload(std::int64_t userId, const std::string& token, std::int64_t now, std::int64_t expiresAt,
                      std::int64_t bytes = 0) const;
    // Bytes the account keeps: its live images and uploads (what a plan's storage cap counts).
    std::int64_t storedBytes(std::int64_t userId, std::int64_t now) const;
    // The owner of a live upload.
    std::optional<std::int64_t> uploadOwner(const std::string& token, std::int64_t now) const;
    // Expired uploads as (owner, token); their rows are deleted.
    std::vector<std::pair<std::int64_t, std::string>> takeExpiredUploads(std::int64_t now) const;
    // The blob names the database refers to for this owner: its images' files and its uploads
    // (a queued job's inputs are in its request).
    std::set<std::string> storedBlobNames(std::int64_t userId) const;

private:
    // Running jobs of `family` matching `condition` back to the queue, except those that used
    // `maxAttempts` (returned). `bind` binds the condition's parameters from index `first` on and returns
    // the next index. The rows put back in the queue go to `requeued` when given.
    std::vector<JobRow> requeueWhere(const std::string& condition, JobFamily family, int maxAttempts,
                                     const std::function<int(Statement&, int first)>& bind,
                                     std::vector<JobRow>* requeued = nullptr) const;
    std::optional<JobRow> claimAmongServers(const std::function<int(std::int64_t)>& maxRunning, JobFamily family,
                                            const std::optional<std::vector<std::string>>& models,
                                            const std::string& home) const;
    const Database& m_db;
};

}  // namespace easel::storage
