#pragma once
// The playground's requests in flight: each is submitted at once (the server queues them), then
// polled with /fetch until it succeeds, fails or is cancelled. Widgets only observe this object.
// Submits go out one at a time, in the order they were made, so the server queues them in the
// order the user clicked (parallel connections could otherwise reorder them).
// Every poll counts against the plan's requests per minute, so requests waiting behind another are
// polled less often, and a poll refused with 429 pauses polling for the Retry-After time instead of
// failing a job that the server still runs.

#include <QElapsedTimer>
#include <QList>
#include <QObject>
#include <QTimer>

#include "ui/api_client.h"
#include "ui/api_types.h"
#include "ui/generation_params.h"

namespace easel::ui {

struct QueuedJob {
    enum class State { Submitting, Queued, Running, Done, Failed, Cancelled };
    int localId = 0;
    qint64 serverId = 0;  // 0 until the server answered the submit
    GenerationKind kind = GenerationKind::Text2Img;
    GenerationParams params;
    State state = State::Submitting;
    GenerationStatus status;  // the latest reply
    bool cancelRequested = false;
    bool pollInFlight = false;
    bool submitInFlight = false;
    QJsonObject pendingBody;  // the request, until it is sent (one submit at a time, in order)

    bool active() const { return state == State::Submitting || state == State::Queued || state == State::Running; }
    // Waiting for its turn to be submitted: the server has never heard of it.
    bool unsent() const { return state == State::Submitting && !submitInFlight; }
    // "Queued (2 ahead)", "Step 3 / 20 · about 4 s left", ...
    QString describe() const;
};

class GenerationQueue : public QObject {
    Q_OBJECT
public:
    explicit GenerationQueue(ApiClient* client, QObject* parent = nullptr);
    void setPollInterval(int milliseconds) { m_timer.setInterval(milliseconds); }
    // Requests behind the first that are not running yet are polled every this many intervals.
    static constexpr int kWaitingPollTicks = 4;

    // Submits `body` (from requestBody()); returns the local id used by the signals.
    int enqueue(GenerationKind kind, const GenerationParams& params, const QJsonObject& body);
    void cancel(int localId);
    // Cancels the oldest active job (what Esc does).
    void cancelCurrent();

    // The active jobs, oldest first.
    QList<QueuedJob> activeJobs() const;
    const QueuedJob* job(int localId) const;

signals:
    void jobsChanged();
    void jobFinished(const easel::ui::QueuedJob& job);
    void jobFailed(const easel::ui::QueuedJob& job, const easel::ui::ApiError& error);
    // Cancelled here or elsewhere (another client, an admin clearing the queue).
    void jobCancelled(const easel::ui::QueuedJob& job);

private:
    QueuedJob* find(int localId);
    void poll();
    // Sends the oldest unsent submit unless one is already on its way.
    void submitNext();
    void applyReply(int localId, const ApiResult& result);
    void sendCancel(QueuedJob& job);
    void finish(QueuedJob& job, QueuedJob::State state, const std::optional<ApiError>& error = std::nullopt);

    ApiClient* m_client;
    QList<QueuedJob> m_jobs;
    int m_nextId = 1;
    QTimer m_timer;
    int m_tick = 0;
    QElapsedTimer m_clock;
    qint64 m_pausedUntilMs = 0;  // m_clock time before which no poll is sent (after a 429)
};

}  // namespace easel::ui
