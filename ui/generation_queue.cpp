#include "generation_queue.h"

#include <cmath>

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
    connect(&m_timer, &QTimer::timeout, this, &GenerationQueue::poll);
}

int GenerationQueue::enqueue(GenerationKind kind, const GenerationParams& params, const QJsonObject& body) {
    QueuedJob job;
    job.localId = m_nextId++;
    job.kind = kind;
    job.params = params;
    m_jobs.append(job);
    const int id = job.localId;
    m_client->submit(kind, body, this, [this, id](const ApiResult& r) { applyReply(id, r); });
    if (!m_timer.isActive()) m_timer.start();
    emit jobsChanged();
    return id;
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
    if (!result.ok()) {
        finish(*job, QueuedJob::State::Failed, result.error);
        return;
    }
    const bool firstAnswer = job->serverId == 0;
    job->status = GenerationStatus::fromJSON(result.json);
    if (job->status.id != 0) job->serverId = job->status.id;
    if (job->status.finished) {
        finish(*job, QueuedJob::State::Done);
        return;
    }
    job->state =
        job->status.step > 0 || job->status.queuePosition == 0 ? QueuedJob::State::Running : QueuedJob::State::Queued;
    // Cancel pressed before the server had told us the id.
    if (firstAnswer && job->cancelRequested) sendCancel(*job);
    emit jobsChanged();
}

void GenerationQueue::poll() {
    bool anyActive = false;
    for (auto& job : m_jobs) {
        if (!job.active()) continue;
        anyActive = true;
        if (job.serverId == 0 || job.pollInFlight || job.cancelRequested) continue;
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
}

}  // namespace easel::ui
