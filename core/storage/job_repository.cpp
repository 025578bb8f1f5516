#include "storage/job_repository.h"

#include "storage/notifications.h"

#include <stdexcept>

namespace easel::storage {
namespace {

constexpr const char* kJobColumns =
    "id, user_id, kind, status, priority, images, request, meta, error, track_id, webhook, temp, attempts, "
    "created_at, started_at, finished_at, generation_seconds, idempotency_key, model_id, home";

JobRow readJob(const Statement& s) {
    JobRow j;
    j.id = s.int64(0);
    j.userId = s.int64(1);
    j.kind = s.text(2);
    j.status = parseJobStatus(s.text(3));
    j.priority = static_cast<int>(s.int64(4));
    j.images = static_cast<int>(s.int64(5));
    j.request = s.text(6);
    j.meta = s.text(7);
    j.error = s.text(8);
    j.trackId = s.text(9);
    j.webhook = s.text(10);
    j.temp = s.int64(11) != 0;
    j.attempts = static_cast<int>(s.int64(12));
    j.createdAt = s.int64(13);
    j.startedAt = s.optionalInt64(14);
    j.finishedAt = s.optionalInt64(15);
    j.generationSeconds = s.real(16);
    j.idempotencyKey = s.text(17);
    j.modelId = s.text(18);
    j.home = s.optionalText(19).value_or("");
    return j;
}

// " AND (model_id IS NULL OR model_id IN (?, ...))" for a claim limited to some models; "" for any.
std::string modelFilter(const std::optional<std::vector<std::string>>& models) {
    if (!models) return "";
    if (models->empty()) return " AND model_id IS NULL";
    std::string out = " AND (model_id IS NULL OR model_id IN (";
    for (std::size_t i = 0; i < models->size(); ++i) out += i == 0 ? "?" : ", ?";
    return out + "))";
}

// " AND (home IS NULL OR home = ?)" for a claim limited to one home; "" for any.
std::string homeFilter(const std::string& home) { return home.empty() ? "" : " AND (home IS NULL OR home = ?)"; }

// Binds modelFilter's then homeFilter's values.
void bindClaimFilters(Statement& s, const std::optional<std::vector<std::string>>& models,
                      const std::string& home = {}) {
    int at = 1;
    if (models) {
        for (const auto& m : *models) s.bind(at++, m);
    }
    if (!home.empty()) s.bind(at, home);
}

ImageRow readImage(const Statement& s) {
    return {s.int64(0), s.int64(1), s.int64(2), static_cast<int>(s.int64(3)), s.text(4), s.int64(5)};
}

// Advisory lock keys of owners (PostgreSQL): user ids offset into a range of their own.
constexpr std::int64_t kOwnerLocks = std::int64_t{1} << 48;

constexpr const char* kImageColumns = "id, job_id, user_id, idx, token, expires_at";

// The condition that keeps a query to one family of jobs (constant text, never user input).
std::string inFamily(JobFamily family, const char* column = "kind") {
    return std::string(column) + (family == JobFamily::Training ? " IN " : " NOT IN ") + "('" + kFineTuneKind + "', '" +
           kLoraFineTuneKind + "')";
}

}  // namespace

JobFamily familyOf(const std::string& kind) {
    return kind == kFineTuneKind || kind == kLoraFineTuneKind ? JobFamily::Training : JobFamily::Generation;
}

const char* jobStatusName(JobStatus s) {
    switch (s) {
        case JobStatus::Queued:
            return "queued";
        case JobStatus::Running:
            return "running";
        case JobStatus::Succeeded:
            return "succeeded";
        case JobStatus::Failed:
            return "failed";
        case JobStatus::Cancelled:
            return "cancelled";
    }
    return "queued";
}

JobStatus parseJobStatus(const std::string& s) {
    for (auto v :
         {JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled}) {
        if (s == jobStatusName(v)) return v;
    }
    throw DatabaseError("unknown job status '" + s + "'");
}

std::int64_t JobRepository::insert(const JobRow& j) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "INSERT INTO jobs (user_id, kind, status, priority, images, request, track_id, webhook, temp, created_at, "
        "idempotency_key, model_id, home) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    s.bindAll(j.userId, j.kind, j.priority, j.images, j.request, j.trackId, j.webhook,
              static_cast<std::int64_t>(j.temp), j.createdAt,
              j.idempotencyKey.empty() ? std::optional<std::string>() : std::optional(j.idempotencyKey),
              j.modelId.empty() ? std::optional<std::string>() : std::optional(j.modelId),
              j.home.empty() ? std::optional<std::string>() : std::optional(j.home));
    const auto id = insertedId(s);
    notify(m_db, kJobsQueuedChannel);  // with the caller's transaction, at its commit
    return id;
}

std::optional<JobRow> JobRepository::find(std::int64_t id) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?");
    s.bindAll(id);
    if (!s.step()) return std::nullopt;
    return readJob(s);
}

std::optional<JobRow> JobRepository::findByIdempotencyKey(std::int64_t userId, const std::string& key) const {
    const auto l = m_db.lock();
    auto s =
        m_db.statement(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE user_id = ? AND idempotency_key = ?");
    s.bindAll(userId, key);
    if (!s.step()) return std::nullopt;
    return readJob(s);
}

int JobRepository::activeCount(std::int64_t userId, JobFamily family) const {
    const auto l = m_db.lock();
    auto s = m_db.statement("SELECT COUNT(*) FROM jobs WHERE user_id = ? AND status IN ('queued', 'running') AND " +
                            inFamily(family));
    s.bindAll(userId);
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

int JobRepository::trainingsCharged(std::int64_t userId) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND status IN ('queued', 'running', 'succeeded') AND " +
        inFamily(JobFamily::Training));
    s.bindAll(userId);
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

JobRepository::QueueStanding JobRepository::queueStanding(const JobRow& job) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "SELECT COUNT(*) FILTER (WHERE ahead), COALESCE(SUM(images) FILTER (WHERE ahead OR status = 'running'), 0) "
        "FROM (SELECT images, status, status = 'queued' AND (priority > ? OR (priority = ? AND id < ?)) AS ahead "
        "FROM jobs WHERE status IN ('queued', 'running') AND " +
        inFamily(familyOf(job.kind)) + ") AS standing");
    s.bindAll(job.priority, job.priority, job.id);
    if (!s.step()) return {};
    return {static_cast<int>(s.int64(0)), s.int64(1)};
}

int JobRepository::queuedTotal(JobFamily family) const {
    const auto l = m_db.lock();
    auto s = m_db.statement("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND " + inFamily(family));
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

std::map<std::string, std::int64_t> JobRepository::countByStatus() const {
    const auto l = m_db.lock();
    auto s = m_db.statement("SELECT status, COUNT(*) FROM jobs GROUP BY status");
    std::map<std::string, std::int64_t> out;
    while (s.step()) out[s.text(0)] = s.int64(1);
    return out;
}

std::vector<std::int64_t> JobRepository::queuedIds(JobFamily family) const {
    const auto l = m_db.lock();
    auto s = m_db.statement("SELECT id FROM jobs WHERE status = 'queued' AND " + inFamily(family) + " ORDER BY id");
    std::vector<std::int64_t> out;
    while (s.step()) out.push_back(s.int64(0));
    return out;
}

void JobRepository::lockOwner(std::int64_t userId) const {
    if (m_db.dialect() != Dialect::PostgreSQL) return;  // BEGIN IMMEDIATE already holds the only write lock
    const auto l = m_db.lock();
    m_db.statement("SELECT pg_advisory_xact_lock(?)").bindAll(kOwnerLocks + userId).run();
}

std::optional<JobRow> JobRepository::claimNext(std::int64_t now, const std::function<int(std::int64_t)>& maxRunning,
                                               JobFamily family, const Lease& lease,
                                               const std::optional<std::vector<std::string>>& models,
                                               const std::string& home) const {
    std::optional<JobRow> claimed;
    m_db.transaction([&] {
        if (m_db.dialect() == Dialect::PostgreSQL) {
            claimed = claimAmongServers(maxRunning, family, models, home);
        } else {
            // The owner's cap counts the running jobs of the same family: a training does not hold a
            // generation slot, nor the other way round.
            auto s = m_db.statement(std::string("SELECT ") + kJobColumns +
                                    ", (SELECT COUNT(*) FROM jobs r WHERE r.user_id = jobs.user_id AND r.status = "
                                    "'running' AND " +
                                    inFamily(family, "r.kind") + ") FROM jobs WHERE status = 'queued' AND " +
                                    inFamily(family) + modelFilter(models) + homeFilter(home) +
                                    " ORDER BY priority DESC, id LIMIT 256");
            bindClaimFilters(s, models, home);
            while (s.step()) {
                auto job = readJob(s);
                if (s.int64(20) < maxRunning(job.userId)) {
                    claimed = std::move(job);
                    break;
                }
            }
        }
        if (!claimed) return;
        m_db.statement(
                "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1, lease_owner = ?, "
                "lease_expires_at = ?, cancel_requested = 0, home = COALESCE(home, ?) WHERE id = ?")
            .bind(1, now)
            .bind(2, lease.owner.empty() ? std::optional<std::string>() : std::optional(lease.owner))
            .bind(3, lease.owner.empty() ? std::optional<std::int64_t>() : std::optional(now + lease.seconds))
            .bind(4, home.empty() ? std::optional<std::string>() : std::optional(home))
            .bind(5, claimed->id)
            .run();
        // A job of no home becomes the claimer's: its work folder is there now.
        if (claimed->home.empty()) claimed->home = home;
        claimed->status = JobStatus::Running;
        claimed->startedAt = now;
        ++claimed->attempts;
    });
    return claimed;
}

std::optional<JobRow> JobRepository::claimAmongServers(const std::function<int(std::int64_t)>& maxRunning,
                                                       JobFamily family,
                                                       const std::optional<std::vector<std::string>>& models,
                                                       const std::string& home) const {
    // Other servers claim at the same moment: SKIP LOCKED hands each of them other queued rows, and the
    // owner's lock makes counting their running jobs and taking one a single step, so two servers never
    // both start a job of an owner who has one slot left.
    auto s = m_db.statement(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE status = 'queued' AND " +
                            inFamily(family) + modelFilter(models) + homeFilter(home) +
                            " ORDER BY priority DESC, id LIMIT 64 FOR UPDATE SKIP LOCKED");
    bindClaimFilters(s, models, home);
    std::vector<JobRow> candidates;
    while (s.step()) candidates.push_back(readJob(s));
    std::set<std::int64_t> full;
    for (auto& job : candidates) {
        if (full.count(job.userId) != 0) continue;
        lockOwner(job.userId);
        auto running = m_db.statement("SELECT COUNT(*) FROM jobs WHERE user_id = ? AND status = 'running' AND " +
                                      inFamily(family));
        running.bindAll(job.userId);
        if (running.step() && running.int64(0) < maxRunning(job.userId)) return std::move(job);
        full.insert(job.userId);
    }
    return std::nullopt;
}

namespace {
// " AND attempts = ?" when the caller fences with its attempt.
std::string fence(const std::optional<int>& attempt) { return attempt ? " AND attempts = ?" : ""; }
}  // namespace

bool JobRepository::markSucceeded(std::int64_t id, const std::string& meta, double seconds, std::int64_t now,
                                  std::optional<int> attempt) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "UPDATE jobs SET status = 'succeeded', meta = ?, generation_seconds = ?, finished_at = ?, lease_owner = NULL, "
        "lease_expires_at = NULL "
        "WHERE id = ? AND status = 'running'" +
        fence(attempt));
    s.bindAll(meta, seconds, now, id);
    if (attempt) s.bind(5, *attempt);
    return s.run() == 1;
}

bool JobRepository::cancelIfQueued(std::int64_t id, std::int64_t now) const {
    const auto l = m_db.lock();
    return m_db.statement("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'queued'")
               .bindAll(now, id)
               .run() == 1;
}

bool JobRepository::markFailed(std::int64_t id, const std::string& error, std::int64_t now,
                               std::optional<int> attempt) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "UPDATE jobs SET status = 'failed', error = ?, finished_at = ?, lease_owner = NULL, lease_expires_at = NULL "
        "WHERE id = ? AND status IN "
        "('queued', 'running')" +
        fence(attempt));
    s.bindAll(error, now, id);
    if (attempt) s.bind(4, *attempt);
    return s.run() == 1;
}

bool JobRepository::markCancelled(std::int64_t id, std::int64_t now, std::optional<int> attempt) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "UPDATE jobs SET status = 'cancelled', finished_at = ?, lease_owner = NULL, lease_expires_at = NULL WHERE id = "
        "? AND status IN "
        "('queued', 'running')" +
        fence(attempt));
    s.bindAll(now, id);
    if (attempt) s.bind(3, *attempt);
    return s.run() == 1;
}

int JobRepository::renewLeases(const std::string& owner, std::int64_t until) const {
    const auto l = m_db.lock();
    return m_db.statement("UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND status = 'running'")
        .bindAll(until, owner)
        .run();
}

std::vector<std::int64_t> JobRepository::toStop(const std::vector<std::pair<std::int64_t, int>>& jobAttempts) const {
    const auto l = m_db.lock();
    std::vector<std::int64_t> out;
    for (const auto& [id, attempt] : jobAttempts) {
        auto s = m_db.statement("SELECT status, attempts, cancel_requested FROM jobs WHERE id = ?");
        s.bindAll(id);
        if (!s.step() || s.text(0) != "running" || s.int64(1) != attempt || s.int64(2) != 0) out.push_back(id);
    }
    return out;
}

void JobRepository::saveProgress(std::int64_t id, const ProgressRow& p) const {
    const auto l = m_db.lock();
    m_db.statement(
            "INSERT INTO job_progress (job_id, attempt, step, total, sample, samples, preview, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET attempt = excluded.attempt, "
            "step = excluded.step, total = excluded.total, sample = excluded.sample, samples = excluded.samples, "
            "preview = excluded.preview, updated_at = excluded.updated_at "
            "WHERE job_progress.attempt <= excluded.attempt")
        .bindAll(id, p.attempt, p.step, p.total, p.sample, p.samples, p.preview, p.updatedAt)
        .run();
}

std::optional<ProgressRow> JobRepository::progressOf(std::int64_t id) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "SELECT p.attempt, p.step, p.total, p.sample, p.samples, p.preview, p.updated_at FROM job_progress p "
        "JOIN jobs j ON j.id = p.job_id WHERE p.job_id = ? AND j.status = 'running' AND p.attempt = j.attempts");
    s.bindAll(id);
    if (!s.step()) return std::nullopt;
    ProgressRow p;
    p.attempt = static_cast<int>(s.int64(0));
    p.step = static_cast<int>(s.int64(1));
    p.total = static_cast<int>(s.int64(2));
    p.sample = static_cast<int>(s.int64(3));
    p.samples = static_cast<int>(s.int64(4));
    if (!s.isNull(5)) p.preview = s.blob(5);
    p.updatedAt = s.int64(6);
    return p;
}

void JobRepository::clearProgress(std::int64_t id, int attempt) const {
    const auto l = m_db.lock();
    m_db.statement("DELETE FROM job_progress WHERE job_id = ? AND attempt = ?").bindAll(id, attempt).run();
}

int JobRepository::liveRunningCount(std::int64_t userId, std::int64_t now, JobFamily family) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND status = 'running' AND "
        "(lease_expires_at IS NULL OR lease_expires_at >= ?) AND " +
        inFamily(family));
    s.bindAll(userId, now);
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

bool JobRepository::requestCancel(std::int64_t id) const {
    const auto l = m_db.lock();
    if (m_db.statement("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'").bindAll(id).run() !=
        1) {
        return false;
    }
    notify(m_db, kCancelChannel);
    return true;
}

int JobRepository::requestCancelOf(std::int64_t userId, JobFamily family) const {
    const auto l = m_db.lock();
    const int n = m_db.statement("UPDATE jobs SET cancel_requested = 1 WHERE user_id = ? AND status = 'running' AND " +
                                 inFamily(family))
                      .bindAll(userId)
                      .run();
    if (n > 0) notify(m_db, kCancelChannel);
    return n;
}

std::vector<JobRow> JobRepository::requeueWhere(const std::string& condition, JobFamily family, int maxAttempts,
                                                const std::function<int(Statement&, int first)>& bind,
                                                std::vector<JobRow>* requeued) const {
    std::vector<JobRow> exhausted;
    m_db.transaction([&] {
        auto s = m_db.statement(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE status = 'running' AND " +
                                condition + " AND " + inFamily(family));
        bind(s, 1);
        while (s.step()) {
            auto job = readJob(s);
            if (job.attempts >= maxAttempts) {
                exhausted.push_back(std::move(job));
            } else if (requeued != nullptr) {
                requeued->push_back(std::move(job));
            }
        }
        auto u = m_db.statement(
            "UPDATE jobs SET status = 'queued', started_at = NULL, lease_owner = NULL, lease_expires_at = NULL "
            "WHERE status = 'running' AND " +
            condition + " AND attempts < ? AND " + inFamily(family));
        u.bind(bind(u, 1), maxAttempts);
        if (u.run() > 0) notify(m_db, kJobsQueuedChannel);
    });
    return exhausted;
}

std::vector<JobRow> JobRepository::requeueRunning(int maxAttempts, JobFamily family, const std::string& home) const {
    if (home.empty()) return requeueWhere("1 = 1", family, maxAttempts, [](Statement&, int first) { return first; });
    return requeueWhere("home = ?", family, maxAttempts, [&](Statement& s, int first) {
        s.bind(first, home);
        return first + 1;
    });
}

std::vector<JobRow> JobRepository::requeueExpired(std::int64_t now, int maxAttempts, const std::string& exceptOwner,
                                                  JobFamily family) const {
    // No lease at all: claimed before leases existed, or by hand; nobody renews it.
    return requeueWhere(
        "(lease_expires_at IS NULL OR lease_expires_at < ?) AND (lease_owner IS NULL OR lease_owner != ?)", family,
        maxAttempts, [&](Statement& s, int first) {
            s.bind(first, now).bind(first + 1, exceptOwner);
            return first + 2;
        });
}

std::vector<JobRow> JobRepository::requeueExpiredLeases(std::int64_t now, int maxAttempts,
                                                        const std::string& exceptOwner, JobFamily family,
                                                        std::vector<JobRow>& requeued) const {
    return requeueWhere(
        "lease_owner IS NOT NULL AND lease_owner != ? AND lease_expires_at < ?", family, maxAttempts,
        [&](Statement& s, int first) {
            s.bind(first, exceptOwner).bind(first + 1, now);
            return first + 2;
        },
        &requeued);
}

bool JobRepository::setHome(std::int64_t id, const std::string& home) const {
    const auto l = m_db.lock();
    const bool changed = m_db.statement("UPDATE jobs SET home = ? WHERE id = ? AND status = 'queued'")
                             .bind(1, home.empty() ? std::optional<std::string>() : std::optional(home))
                             .bind(2, id)
                             .run() > 0;
    if (changed) notify(m_db, kJobsQueuedChannel);
    return changed;
}

void JobRepository::requeue(std::int64_t id, std::optional<int> attempt) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "UPDATE jobs SET status = 'queued', started_at = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id "
        "= ? AND status = 'running'" +
        fence(attempt));
    s.bindAll(id);
    if (attempt) s.bind(2, *attempt);
    if (s.run() > 0) notify(m_db, kJobsQueuedChannel);
}

std::vector<std::int64_t> JobRepository::cancelQueuedOf(std::int64_t userId, std::int64_t now, JobFamily family) const {
    std::vector<std::int64_t> ids;
    m_db.transaction([&] {
        auto s = m_db.statement("SELECT id FROM jobs WHERE user_id = ? AND status = 'queued' AND " + inFamily(family));
        s.bindAll(userId);
        while (s.step()) ids.push_back(s.int64(0));
        m_db.statement(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE user_id = ? AND status = 'queued' AND " +
                inFamily(family))
            .bindAll(now, userId)
            .run();
    });
    return ids;
}

std::vector<JobRow> JobRepository::listForUser(std::int64_t userId, int limit, int offset, bool activeOnly,
                                               JobFamily family) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE user_id = ? AND " +
                            inFamily(family) + (activeOnly ? " AND status IN ('queued', 'running')" : "") +
                            " ORDER BY id DESC LIMIT ? OFFSET ?");
    s.bindAll(userId, limit, offset);
    std::vector<JobRow> out;
    while (s.step()) out.push_back(readJob(s));
    return out;
}

std::int64_t JobRepository::countForUser(std::int64_t userId, JobFamily family) const {
    const auto l = m_db.lock();
    auto s = m_db.statement("SELECT COUNT(*) FROM jobs WHERE user_id = ? AND " + inFamily(family));
    s.bindAll(userId);
    return s.step() ? s.int64(0) : 0;
}

void JobRepository::setMeta(std::int64_t id, const std::string& meta, std::optional<int> attempt) const {
    const auto l = m_db.lock();
    auto s = m_db.statement("UPDATE jobs SET meta = ? WHERE id = ?" + fence(attempt));
    s.bindAll(meta, id);
    if (attempt) s.bind(3, *attempt);
    s.run();
}

void JobRepository::remove(std::int64_t id) const {
    const auto l = m_db.lock();
    m_db.statement("DELETE FROM jobs WHERE id = ?").bindAll(id).run();
}

void JobRepository::insertImage(const ImageRow& r, std::int64_t now) const {
    const auto l = m_db.lock();
    m_db.statement(
            "INSERT INTO images (job_id, user_id, idx, token, created_at, expires_at, bytes) VALUES (?, ?, ?, ?, ?, ?, "
            "?)")
        .bindAll(r.jobId, r.userId, r.index, r.token, now, r.expiresAt, r.bytes)
        .run();
}

std::vector<ImageRow> JobRepository::imagesOf(std::int64_t jobId) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kImageColumns + " FROM images WHERE job_id = ? ORDER BY idx");
    s.bindAll(jobId);
    std::vector<ImageRow> out;
    while (s.step()) out.push_back(readImage(s));
    return out;
}

std::optional<ImageRow> JobRepository::imageByToken(const std::string& token) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kImageColumns + " FROM images WHERE token = ?");
    s.bindAll(token);
    if (!s.step()) return std::nullopt;
    return readImage(s);
}

void JobRepository::removeImagesOf(std::int64_t jobId) const {
    const auto l = m_db.lock();
    m_db.statement("DELETE FROM images WHERE job_id = ?").bindAll(jobId).run();
}

std::vector<ImageRow> JobRepository::expiredImages(std::int64_t now) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kImageColumns + " FROM images WHERE expires_at <= ? LIMIT 1000");
    s.bindAll(now);
    std::vector<ImageRow> out;
    while (s.step()) out.push_back(readImage(s));
    return out;
}

void JobRepository::removeImage(std::int64_t id) const {
    const auto l = m_db.lock();
    m_db.statement("DELETE FROM images WHERE id = ?").bindAll(id).run();
}

void JobRepository::insertUpload(std::int64_t userId, const std::string& token, std::int64_t now,
                                 std::int64_t expiresAt, std::int64_t bytes) const {
    const auto l = m_db.lock();
    m_db.statement("INSERT INTO uploads (user_id, token, created_at, expires_at, bytes) VALUES (?, ?, ?, ?, ?)")
        .bindAll(userId, token, now, expiresAt, bytes)
        .run();
}

std::int64_t JobRepository::storedBytes(std::int64_t userId, std::int64_t now) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM images WHERE user_id = ?1 AND expires_at > ?2) + "
        "(SELECT COALESCE(SUM(bytes), 0) FROM uploads WHERE user_id = ?1 AND expires_at > ?2)");
    s.bindAll(userId, now);
    return s.step() ? s.int64(0) : 0;
}

std::optional<std::int64_t> JobRepository::uploadOwner(const std::string& token, std::int64_t now) const {
    const auto l = m_db.lock();
    auto s = m_db.statement("SELECT user_id FROM uploads WHERE token = ? AND expires_at > ?");
    s.bindAll(token, now);
    if (!s.step()) return std::nullopt;
    return s.int64(0);
}

std::vector<std::pair<std::int64_t, std::string>> JobRepository::takeExpiredUploads(std::int64_t now) const {
    std::vector<std::pair<std::int64_t, std::string>> out;
    m_db.transaction([&] {
        auto s = m_db.statement("SELECT user_id, token FROM uploads WHERE expires_at <= ? LIMIT 1000");
        s.bindAll(now);
        while (s.step()) out.emplace_back(s.int64(0), s.text(1));
        for (const auto& [user, token] : out)
            m_db.statement("DELETE FROM uploads WHERE token = ?").bindAll(token).run();
    });
    return out;
}

std::set<std::string> JobRepository::storedBlobNames(std::int64_t userId) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "SELECT token || '.png' FROM images WHERE user_id = ? UNION ALL SELECT token FROM uploads WHERE user_id = ?");
    s.bindAll(userId, userId);
    std::set<std::string> out;
    while (s.step()) out.insert(s.text(0));
    return out;
}

}  // namespace easel::storage
