#include "ui/training_job.h"

namespace easel::ui {

namespace {

// The API writes its text in "message" or, in its own spelling, "messege"; the generic mapping reads
// only the first.
ApiError errorOf(const ApiResult& result) {
    ApiError error = *result.error;
    if (const QString text = replyMessage(result.json); !text.isEmpty()) error.message = text;
    return error;
}

// Errors that say nothing about the run itself: the server is busy, restarting or out of reach.
bool transient(const ApiError& error) {
    return error.kind == ApiErrorKind::Unreachable || error.kind == ApiErrorKind::RateLimited ||
           error.kind == ApiErrorKind::ServerError || error.kind == ApiErrorKind::InvalidResponse;
}

}  // namespace

TrainingJob::TrainingJob(ApiClient* client, QObject* parent) : QObject(parent), m_client(client) {
    m_timer.setInterval(kDefaultPollMs);
    connect(&m_timer, &QTimer::timeout, this, &TrainingJob::poll);
}

void TrainingJob::start(TrainingMethod method, const QJsonObject& body) {
    if (active()) return;
    m_state = State::Starting;
    m_method = method;
    m_status = {};
    m_pollFailures = 0;
    m_cancelRequested = false;
    const int run = ++m_run;
    emit statusChanged(m_status);
    m_client->startTraining(method, body, this, [this, run](const ApiResult& r) {
        if (run == m_run) applyStart(r);
    });
}

void TrainingJob::resume(TrainingMethod method, const TrainingStatus& status) {
    if (active() || status.trainingId == 0 || status.finished()) return;
    ++m_run;
    m_state = State::Running;
    m_method = method;
    m_status = status;
    m_pollFailures = 0;
    m_cancelRequested = false;
    emit statusChanged(m_status);
    m_timer.start();
}

void TrainingJob::applyStart(const ApiResult& result) {
    if (!result.ok()) {
        fail(errorOf(result));
        return;
    }
    m_status = TrainingStatus::fromJSON(result.json, m_status);
    if (m_status.trainingId == 0) {
        ApiError error;
        error.kind = ApiErrorKind::InvalidResponse;
        error.message = tr("The server accepted the training but sent no training_id.");
        fail(error);
        return;
    }
    m_state = State::Running;
    emit statusChanged(m_status);
    if (m_cancelRequested) sendCancel();
    m_timer.start();
}

void TrainingJob::poll() {
    if (m_state != State::Running || m_pollInFlight || m_cancelInFlight) return;
    m_pollInFlight = true;
    const int run = m_run;
    m_client->trainingStatus(m_status.trainingId, this, [this, run](const ApiResult& r) {
        if (run != m_run) return;
        m_pollInFlight = false;
        applyStatus(r);
    });
}

void TrainingJob::applyStatus(const ApiResult& result) {
    if (!result.ok()) {
        const ApiError error = errorOf(result);
        // A 2xx "status": "failed"/"error" is the run's own failure, with its reason.
        if (error.kind == ApiErrorKind::Failed) {
            m_status = TrainingStatus::fromJSON(result.json, m_status);
            m_status.stage = QString::fromLatin1(stages::kFailed);
            if (m_status.reason.isEmpty()) m_status.reason = error.message;
        } else if (transient(error) && ++m_pollFailures < kMaxPollFailures) {
            return;
        } else {
            fail(error);
            return;
        }
    } else {
        m_pollFailures = 0;
        m_status = TrainingStatus::fromJSON(result.json, m_status);
    }
    emit statusChanged(m_status);
    if (m_status.ready()) {
        const TrainingStatus done = m_status;
        stop();
        emit modelReady(done);
    } else if (m_status.failed()) {
        ApiError error;
        error.kind = ApiErrorKind::Failed;
        error.message = m_status.reason.isEmpty() ? tr("The training failed; the server gave no reason.")
                                                  : tr("The training failed: %1").arg(m_status.reason);
        fail(error);
    } else if (m_status.cancelled()) {
        // Cancelled elsewhere: another client with the same key, or an admin.
        stop();
        emit cancelled();
    }
}

void TrainingJob::cancel() {
    if (!active() || m_cancelRequested) return;
    m_cancelRequested = true;
    // Before the start reply there is no id yet; applyStart() sends the cancel.
    if (m_state == State::Running) sendCancel();
    emit statusChanged(m_status);
}

void TrainingJob::sendCancel() {
    const int run = m_run;
    m_cancelInFlight = true;
    m_client->cancelTraining(m_status.trainingId, this, [this, run](const ApiResult& r) {
        if (run != m_run) return;
        m_cancelInFlight = false;
        if (!r.ok()) {
            // Most likely the run ended just before; the next poll says how.
            m_cancelRequested = false;
            emit statusChanged(m_status);
            return;
        }
        // A queued training is cancelled at once; a running one stops at its next step, which the
        // polls (going on meanwhile) report. An answer without the stage is taken as done.
        const QString stage = r.json.value(QStringLiteral("training_status")).toString();
        if (!stage.isEmpty() && stage != QLatin1String(stages::kCancelled)) return;
        m_status.stage = QString::fromLatin1(stages::kCancelled);
        m_status.etaSeconds = -1;
        stop();
        emit statusChanged(m_status);
        emit cancelled();
    });
}

void TrainingJob::fail(ApiError error) {
    const bool changed = m_status.stage != QLatin1String(stages::kFailed);
    if (changed) {
        m_status.stage = QString::fromLatin1(stages::kFailed);
        m_status.reason = error.message;
        m_status.etaSeconds = -1;
    }
    stop();
    if (changed) emit statusChanged(m_status);
    emit failed(error);
}

void TrainingJob::stop() {
    m_timer.stop();
    m_state = State::Idle;
    m_pollInFlight = false;
    m_cancelInFlight = false;
    m_cancelRequested = false;
    ++m_run;
}

}  // namespace easel::ui
