#pragma once
// A DialogPresenter for tests: records what would have been shown and answers from queues.

#include <QQueue>
#include <QStringList>

#include "ui/dialog_presenter.h"

namespace easel::ui::testing {

class RecordingPresenter : public DialogPresenter {
public:
    void showError(QWidget*, const ApiError& error) override { errors.append(error); }
    void showMessage(QWidget*, const QString& title, const QString& text) override {
        messages.append(title + QStringLiteral(": ") + text);
    }
    bool confirm(QWidget*, const QString&, const QString& text) override {
        confirmations.append(text);
        return confirmAnswer;
    }
    std::optional<QString> askText(QWidget*, const QString&, const QString& label, bool secret) override {
        questions.append(label);
        secrets.append(secret);
        if (answers.isEmpty()) return std::nullopt;
        return answers.dequeue();
    }
    QString askSaveFile(QWidget*, const QString&, const QString&, const QString&) override { return savePath; }

    QList<ApiError> errors;
    QStringList messages;
    QStringList confirmations;
    QStringList questions;
    QList<bool> secrets;
    bool confirmAnswer = true;
    QQueue<QString> answers;
    QString savePath;
};

}  // namespace easel::ui::testing
