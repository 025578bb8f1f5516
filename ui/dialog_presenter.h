#pragma once
// Every dialog the app shows goes through this interface, so tests can record the messages and
// answer the questions instead of blocking on a modal QMessageBox.

#include <QString>
#include <QStringList>
#include <optional>

#include "ui/api_error.h"

class QWidget;

namespace easel::ui {

class DialogPresenter {
public:
    virtual ~DialogPresenter() = default;
    virtual void showError(QWidget* parent, const ApiError& error) = 0;
    virtual void showMessage(QWidget* parent, const QString& title, const QString& text) = 0;
    // A yes/no question; true for yes.
    virtual bool confirm(QWidget* parent, const QString& title, const QString& text) = 0;
    // A line of text (a password when `secret`); nullopt when the user cancelled.
    virtual std::optional<QString> askText(QWidget* parent, const QString& title, const QString& label,
                                           bool secret) = 0;
    // A file to write; empty when the user cancelled.
    virtual QString askSaveFile(QWidget* parent, const QString& title, const QString& suggestedName,
                                const QString& filter) = 0;
};

// The real thing: QMessageBox and QInputDialog.
class MessageBoxPresenter : public DialogPresenter {
public:
    void showError(QWidget* parent, const ApiError& error) override;
    void showMessage(QWidget* parent, const QString& title, const QString& text) override;
    bool confirm(QWidget* parent, const QString& title, const QString& text) override;
    std::optional<QString> askText(QWidget* parent, const QString& title, const QString& label, bool secret) override;
    QString askSaveFile(QWidget* parent, const QString& title, const QString& suggestedName,
                        const QString& filter) override;

private:
    // The errors whose box is open now. A box runs a nested event loop, in which other replies still
    // arrive: the same error from them (every start-up request against a server that is down) is not
    // stacked on top of the one already shown.
    QStringList m_showing;
};

}  // namespace easel::ui
