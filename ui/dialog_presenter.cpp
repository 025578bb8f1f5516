#include "ui/dialog_presenter.h"

#include <QFileDialog>
#include <QInputDialog>
#include <QLineEdit>
#include <QMessageBox>

namespace easel::ui {

void MessageBoxPresenter::showError(QWidget* parent, const ApiError& error) {
    const QString key = error.title() + QLatin1Char('\n') + error.userText();
    if (m_showing.contains(key)) return;
    m_showing.append(key);
    QMessageBox box(QMessageBox::Warning, error.title(), error.userText(), QMessageBox::Ok, parent);
    box.exec();
    m_showing.removeOne(key);
}

void MessageBoxPresenter::showMessage(QWidget* parent, const QString& title, const QString& text) {
    QMessageBox::information(parent, title, text);
}

bool MessageBoxPresenter::confirm(QWidget* parent, const QString& title, const QString& text) {
    return QMessageBox::question(parent, title, text, QMessageBox::Yes | QMessageBox::No, QMessageBox::No) ==
           QMessageBox::Yes;
}

std::optional<QString> MessageBoxPresenter::askText(QWidget* parent, const QString& title, const QString& label,
                                                    bool secret) {
    bool ok = false;
    const QString text =
        QInputDialog::getText(parent, title, label, secret ? QLineEdit::Password : QLineEdit::Normal, {}, &ok);
    if (!ok) return std::nullopt;
    return text;
}

QString MessageBoxPresenter::askSaveFile(QWidget* parent, const QString& title, const QString& suggestedName,
                                         const QString& filter) {
    return QFileDialog::getSaveFileName(parent, title, suggestedName, filter);
}

}  // namespace easel::ui
