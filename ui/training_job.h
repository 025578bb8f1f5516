#pragma once
// One fine-tuning run as the desktop app follows it: started with a POST, then polled with
// fine_tune_status about once a second until the model is ready, the training failed or it was
// cancelled. Widgets only observe this object (as they do the GenerationQueue).
// A poll that gets no answer, or a 429/5xx, is retried: training takes minutes to hours, and a
// server that is busy or restarting for a moment has not failed the run. Only a run of such errors
// (kMaxPollFailures in a row) gives up.

#include <QObject>
#include <QTimer>

#include "ui/api_client.h"
#include "ui/training_types.h"

namespace easel::ui {

class TrainingJob : public QObject {
    Q_OBJECT
public:
    explicit TrainingJob(ApiClient* client, QObject* parent = nullptr);
    static constexpr int kDefaultPollMs = 1000;
    static constexpr int kMaxPollFailures = 10;
    void setPollInterval(int milliseconds) { m_timer.setInterval(milliseconds); }

    // Sends the start request (`body` from trainingBody()); ignored while a run is active.
    void start(TrainingMethod method, const QJsonObject& body);
    // Follows a run started earlier (by this app before a restart, or another client with the key).
    void resume(TrainingMethod method, const TrainingStatus& status);
    // Asks the server to stop the run; `cancelled` follows once it agreed.
    void cancel();

    bool active() const { return m_state != State::Idle; }
    bool cancelling() const { return m_cancelRequested; }
    TrainingMethod method() const { return m_method; }
    const TrainingStatus& status() const { return m_status; }

signals:
    void statusChanged(const easel::ui::TrainingStatus& status);
    void modelReady(const easel::ui::TrainingStatus& status);
    void failed(const easel::ui::ApiError& error);
    void cancelled();

private:
    enum class State { Idle, Starting, Running };
    void poll();
    void applyStart(const ApiResult& result);
    void applyStatus(const ApiResult& result);
    void sendCancel();
    void fail(ApiError error);
    void stop();

    ApiClient* m_client;
    QTimer m_timer;
    State m_state = State::Idle;
    TrainingMethod m_method = TrainingMethod::DreamBooth;
    TrainingStatus m_status;
    int m_run = 0;  // which run a reply belongs to: one from a run that ended is dropped
    bool m_pollInFlight = false;
    bool m_cancelRequested = false;  // until the run ends: the label says "cancelling…"
    bool m_cancelInFlight = false;   // no polls while the cancel request is on its way
    int m_pollFailures = 0;
};

}  // namespace easel::ui
