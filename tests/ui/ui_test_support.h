#pragma once
// Helpers for the ui tests: screenshots for a human to look at, and waiting on the event loop.

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QDir>
#include <QWidget>
#include <functional>

namespace easel::ui {

// Saves widget.grab() as $EASEL_ARTIFACT_DIR/<name>.png when that variable is set.
inline void saveScreenshot(QWidget& widget, const QString& name) {
    const QString dir = qEnvironmentVariable("EASEL_ARTIFACT_DIR");
    if (dir.isEmpty()) return;
    QDir().mkpath(dir);
    widget.grab().save(QDir(dir).filePath(name + QStringLiteral(".png")));
}

// Processes events until `done` holds or `timeoutMs` passes; returns whether it held.
inline bool waitFor(const std::function<bool()>& done, int timeoutMs = 5000) {
    QDeadlineTimer deadline(timeoutMs);
    while (!done()) {
        if (deadline.hasExpired()) return false;
        QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    }
    return true;
}

}  // namespace easel::ui
