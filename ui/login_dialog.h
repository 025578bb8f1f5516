#pragma once
// Sign in or create an account on a server. On success the ApiClient holds both credentials: the
// session token (login) and the API key (signup returns it; after a plain login it is fetched with
// the password just typed, so the user is not asked twice).

#include <QDialog>

class QLabel;
class QLineEdit;
class QPushButton;

namespace easel::ui {

class ApiClient;

class LoginDialog : public QDialog {
    Q_OBJECT
public:
    explicit LoginDialog(ApiClient* client, QWidget* parent = nullptr);

    QString email() const;
    // What the buttons do; public so tests can drive the dialog without clicking.
    void signIn();
    void signUp();

private:
    void setBusy(bool busy);
    void fail(const QString& text);
    void fetchKeyAndFinish(const QString& password);

    ApiClient* m_client;
    QLineEdit* m_server;
    QLineEdit* m_email;
    QLineEdit* m_password;
    QLabel* m_message;
    QPushButton* m_signIn;
    QPushButton* m_signUp;
};

}  // namespace easel::ui
