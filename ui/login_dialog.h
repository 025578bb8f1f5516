#pragma once
// Sign in or create an account on a server. On success the ApiClient holds both credentials: the
// session token (login) and the API key (signup returns it; after a plain login it is fetched with
// the password just typed, so the user is not asked twice). The server and email of the last
// successful sign-in are remembered (QSettings "remote/server", "remote/email"); the password and
// tokens are not. Cancelling puts the client back on the server it had.

#include <QDialog>
#include <QUrl>

class QLabel;
class QLineEdit;
class QPushButton;

namespace easel::ui {

class ApiClient;

class LoginDialog : public QDialog {
    Q_OBJECT
public:
    // `bundled`: the bundled backend's address in local mode. The server field starts at the client's
    // server, or, while that is the bundled one, at the remembered remote server; signing in to the
    // bundled backend is not remembered.
    explicit LoginDialog(ApiClient* client, QWidget* parent = nullptr, const QUrl& bundled = {});

    QString email() const;
    QString serverText() const;
    QString message() const;
    // What the buttons do; public so tests can drive the dialog without clicking.
    void signIn();
    void signUp();
    // Cancel: the client goes back to the server it had.
    void reject() override;

private:
    void setBusy(bool busy);
    void fail(const QString& text);
    void fetchKeyAndFinish(const QString& password);
    void succeed();

    ApiClient* m_client;
    QUrl m_originalServer;
    QUrl m_bundledServer;
    QLineEdit* m_server;
    QLineEdit* m_email;
    QLineEdit* m_password;
    QLabel* m_message;
    QPushButton* m_signIn;
    QPushButton* m_signUp;
};

}  // namespace easel::ui
