#include "ui/generation_queue.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace easel::ui {

QString QueuedJob::describe() const {
    switch (state) {
        case State::Submitting:
            return QObject::tr("Sending…");
        case State::Queued:
            return status.queuePosition > 0 ? QObject::tr("Queued (%1 ahead)").arg(status.queuePosition)
                                            : QObject::tr("Queued");
        case State::Running: {
            QString text = status.totalSteps > 0 ? QObject::tr("Step %1 / %2").arg(status.step).arg(status.totalSteps)
                                                 : QObject::tr("Running");
            if (status.etaSeconds >= 0) {
                text += QObject::tr(" · about %1 s left").arg(static_cast<int>(std::ceil(status.etaSeconds)));
            }
            return text;
        }
        case State::Done:
            return QObject::tr("Done");
        case State::Failed:
            return QObject::tr("Failed");
        case State::Cancelled:
            return QObject::tr("Cancelled");
    }
    return {};
}

GenerationQueue::GenerationQueue(ApiClient* client, QObject* parent) : QObject(parent), m_client(client) {
    m_timer.setInterval(500);
    m_clock.start();
    connect(&m_timer, &QTimer::timeout, this, &GenerationQueue::poll);
}

int GenerationQueue::enqueue(GenerationKind kind, const GenerationParams& params, const QJsonObject& body) {
    QueuedJob job;
    job.localId = m_nextId++;
    job.kind = kind;
    job.params = params;
    job.pendingBody = body;
    m_jobs.append(job);
    const int id = job.localId;
    submitNext();
    if (!m_timer.isActive()) m_timer.start();
    emit jobsChanged();
    return id;
}

void GenerationQueue::submitNext() {
    QueuedJob* next = nullptr;
    for (auto& job : m_jobs) {
        if (job.submitInFlight) return;
        if (next == nullptr && job.unsent()) next = &job;
    }
    if (next == nullptr) return;
    next->submitInFlight = true;
    const QJsonObject body = std::exchange(next->pendingBody, {});
    const int id = next->localId;
    m_client->submit(next->kind, body, this, [this, id](const ApiResult& r) {
        if (QueuedJob* job = find(id)) job->submitInFlight = false;
        applyReply(id, r);
        submitNext();
    });
}

QueuedJob* GenerationQueue::find(int localId) {
    for (auto& job : m_jobs) {
        if (job.localId == localId) return &job;
    }
    return nullptr;
}

const QueuedJob* GenerationQueue::job(int localId) const {
    for (const auto& job : m_jobs) {
        if (job.localId == localId) return &job;
    }
    return nullptr;
}

QList<QueuedJob> GenerationQueue::activeJobs() const {
    QList<QueuedJob> out;
    for (const auto& job : m_jobs) {
        if (job.active()) out.append(job);
    }
    return out;
}

void GenerationQueue::applyReply(int localId, const ApiResult& result) {
    QueuedJob* job = find(localId);
    if (job == nullptr || !job->active()) return;
    job->pollInFlight = false;
    const bool firstAnswer = job->serverId == 0;
    if (!result.ok()) {
        // A poll over the plan's rate: the server still runs the job, so ask again once allowed.
        if (!firstAnswer && result.error->kind == ApiErrorKind::RateLimited) {
            constexpr int kDefaultRetrySeconds = 5;
            const int seconds =
                result.error->retryAfterSeconds > 0 ? result.error->retryAfterSeconds : kDefaultRetrySeconds;
            m_pausedUntilMs = std::max(m_pausedUntilMs, m_clock.elapsed() + seconds * qint64{1000});
            emit jobsChanged();
            return;
        }
        finish(*job, QueuedJob::State::Failed, result.error);
        return;
    }
    job->status = GenerationStatus::fromJSON(result.json);
    if (job->status.id != 0) job->serverId = job->status.id;
    if (job->status.finished) {
        finish(*job, QueuedJob::State::Done);
        return;
    }
    // Cancelled elsewhere (another client with the same key, an admin clearing the queue).
    if (job->status.cancelled) {
        finish(*job, QueuedJob::State::Cancelled);
        return;
    }
    job->state =
        job->status.step > 0 || job->status.queuePosition == 0 ? QueuedJob::State::Running : QueuedJob::State::Queued;
    // Cancel pressed before the server had told us the id.
    if (firstAnswer && job->cancelRequested) sendCancel(*job);
    emit jobsChanged();
}

void GenerationQueue::poll() {
    ++m_tick;
    const bool paused = m_clock.elapsed() < m_pausedUntilMs;
    bool anyActive = false;
    for (auto& job : m_jobs) {
        if (!job.active()) continue;
        const bool waiting = anyActive && job.state != QueuedJob::State::Running;
        anyActive = true;
        if (paused || job.serverId == 0 || job.pollInFlight || job.cancelRequested) continue;
        if (waiting && m_tick % kWaitingPollTicks != 0) continue;
        job.pollInFlight = true;
        const int id = job.localId;
        m_client->fetch(job.serverId, this, [this, id](const ApiResult& r) { applyReply(id, r); });
    }
    if (!anyActive) m_timer.stop();
}

void GenerationQueue::cancel(int localId) {
    QueuedJob* job = find(localId);
    if (job == nullptr || !job->active() || job->cancelRequested) return;
    job->cancelRequested = true;
    // Never sent: nothing to cancel on the server.
    if (job->unsent()) {
        finish(*job, QueuedJob::State::Cancelled);
        return;
    }
    if (job->serverId != 0) sendCancel(*job);
    emit jobsChanged();
}

void GenerationQueue::cancelCurrent() {
    for (const auto& job : m_jobs) {
        if (job.active() && !job.cancelRequested) {
            cancel(job.localId);
            return;
        }
    }
}

void GenerationQueue::sendCancel(QueuedJob& job) {
    const int id = job.localId;
    m_client->cancel(job.serverId, this, [this, id](const ApiResult& r) {
        QueuedJob* j = find(id);
        if (j == nullptr || !j->active()) return;
        // A job that finished just before the cancel arrived is reported by the next poll instead.
        if (r.ok())
            finish(*j, QueuedJob::State::Cancelled);
        else
            j->cancelRequested = false;
        emit jobsChanged();
    });
}

void GenerationQueue::finish(QueuedJob& job, QueuedJob::State state, const std::optional<ApiError>& error) {
    job.state = state;
    const QueuedJob copy = job;
    // Finished jobs leave the list; the gallery is where results live.
    m_jobs.removeIf([&](const QueuedJob& j) { return j.localId == copy.localId; });
    emit jobsChanged();
    if (state == QueuedJob::State::Done) emit jobFinished(copy);
    if (state == QueuedJob::State::Failed && error) emit jobFailed(copy, *error);
    if (state == QueuedJob::State::Cancelled) emit jobCancelled(copy);
}

}  // namespace easel::ui
