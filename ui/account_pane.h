#pragma once
// The account and API key dashboard: plan and quota bar, rate limits, usage history, the API key
// (hidden until the password is re-entered), password change and account deletion.

#include <QWidget>

class QCheckBox;

#include "ui/api_types.h"

class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;

namespace easel::ui {

class ApiClient;
class DialogPresenter;

class AccountPane : public QWidget {
    Q_OBJECT
public:
    AccountPane(ApiClient* client, DialogPresenter* dialogs, QWidget* parent = nullptr);

    // Reloads the account and its usage.
    void refresh();
    const AccountInfo& account() const { return m_account; }

    // The actions behind the buttons (each asks what it needs through the DialogPresenter).
    void viewKey();
    void copyKey();
    void regenerateKey();
    void changePassword();
    void deleteAccount();

signals:
    void accountLoaded(const easel::ui::AccountInfo& account);
    void accountDeleted();

private:
    void showAccount(const AccountInfo& account);
    void showUsage(const QList<UsageEntry>& usage);
    void showKey(const QString& key);
    void revealKey(bool copy);

    ApiClient* m_client;
    DialogPresenter* m_dialogs;
    AccountInfo m_account;
    QLabel* m_email;
    QLabel* m_plan;
    QProgressBar* m_quota;
    QLabel* m_limits;
    QLineEdit* m_key;
    QLineEdit* m_oldPassword;
    QLineEdit* m_newPassword;
    QLineEdit* m_confirmPassword;
    QCheckBox* m_replaceKey;
    QTableWidget* m_usage;
};

}  // namespace easel::ui
