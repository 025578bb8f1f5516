// Remote mode's sign-in dialog against the real backend: sign up and sign in give the client both
// credentials, a wrong password keeps the dialog open with the server's message, cancelling puts the
// client back on its server, and the last remote server and email (never the password) are remembered.

#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QTcpServer>

#include "desktop_window_fixture.h"
#include "ui/login_dialog.h"

namespace easel::ui::e2e {
namespace {

class RemoteLoginE2E : public DesktopWindowTest {
protected:
    void SetUp() override {
        QSettings settings;
        settings.remove(QStringLiteral("remote"));
    }

    static void fill(LoginDialog& dialog, const QString& email, const QString& password) {
        dialog.findChild<QLineEdit*>(QStringLiteral("email"))->setText(email);
        dialog.findChild<QLineEdit*>(QStringLiteral("password"))->setText(password);
    }
    static QString field(LoginDialog& dialog, const char* name) {
        return dialog.findChild<QLineEdit*>(QLatin1String(name))->text();
    }
    // Waits until the server answered: the dialog either closed or shows the server's message.
    bool settled(LoginDialog& dialog) {
        return waitFor(
            [&] {
                return dialog.result() == QDialog::Accepted ||
                       (!dialog.message().isEmpty() && !dialog.message().startsWith(QStringLiteral("Contacting")));
            },
            kTimeoutMs);
    }
};

TEST_F(RemoteLoginE2E, SignUpGivesBothCredentialsAndTheServerIsRemembered) {
    LoginDialog dialog(&client);
    EXPECT_EQ(dialog.serverText(), server.url().toString());
    const QString email = QStringLiteral("new.user@example.com");
    fill(dialog, email, kPassword);
    dialog.signUp();
    ASSERT_TRUE(settled(dialog));
    ASSERT_EQ(dialog.result(), QDialog::Accepted) << dialog.message().toStdString();
    ASSERT_FALSE(client.apiKey().isEmpty());
    ASSERT_FALSE(client.sessionToken().isEmpty());
    const auto account = server.backend->accounts().authenticateKey(client.apiKey().toStdString());
    EXPECT_EQ(account.email, email.toStdString());

    // The window now works with those credentials.
    window = makeWindow();
    window->reloadFromServer();
    ASSERT_TRUE(waitFor([&] { return window->accountPane()->account().email == email; }, kTimeoutMs));

    const QSettings settings;
    EXPECT_EQ(settings.value(QStringLiteral("remote/server")).toString(), server.url().toString());
    EXPECT_EQ(settings.value(QStringLiteral("remote/email")).toString(), email);
    for (const auto& key : settings.allKeys())
        EXPECT_FALSE(settings.value(key).toString().contains(kPassword)) << key.toStdString();

    // The next sign-in starts from the remembered email; the password is asked again.
    LoginDialog again(&client);
    EXPECT_EQ(field(again, "email"), email);
    EXPECT_TRUE(field(again, "password").isEmpty());
    saveScreenshot(again, QStringLiteral("e2e_sign_in_dialog"));
}

TEST_F(RemoteLoginE2E, WrongPasswordKeepsTheDialogOpenThenTheRightOneSignsIn) {
    const QString email = QStringLiteral("known@example.com");
    const auto signup = await([&](ApiCallback done) { client.signup(email, kPassword, nullptr, done); });
    ASSERT_TRUE(signup.ok());
    const QString issuedKey = client.apiKey();
    client.setApiKey({});

    LoginDialog dialog(&client);
    fill(dialog, email, QStringLiteral("not the password"));
    dialog.signIn();
    ASSERT_TRUE(settled(dialog));
    EXPECT_NE(dialog.result(), QDialog::Accepted);
    EXPECT_FALSE(dialog.message().isEmpty());
    EXPECT_TRUE(client.apiKey().isEmpty());
    EXPECT_TRUE(dialog.findChild<QPushButton*>()->isEnabled());  // the user can try again
    EXPECT_FALSE(QSettings().contains(QStringLiteral("remote/email")));

    fill(dialog, email, kPassword);
    dialog.signIn();
    ASSERT_TRUE(waitFor([&] { return dialog.result() == QDialog::Accepted; }, kTimeoutMs))
        << dialog.message().toStdString();
    EXPECT_EQ(client.apiKey(), issuedKey);  // fetched with the password just typed
    EXPECT_FALSE(client.sessionToken().isEmpty());
}

TEST_F(RemoteLoginE2E, UnreachableServerIsSaidAndCancelRestoresTheClientsServer) {
    QTcpServer probe;  // a loopback port that nothing listens on once closed
    ASSERT_TRUE(probe.listen(QHostAddress::LocalHost, 0));
    const QString nowhere = QStringLiteral("http://127.0.0.1:%1").arg(probe.serverPort());
    probe.close();

    const QUrl original = client.baseUrl();
    LoginDialog dialog(&client);
    dialog.findChild<QLineEdit*>(QStringLiteral("server"))->setText(nowhere);
    fill(dialog, QStringLiteral("a@example.com"), kPassword);
    dialog.signIn();
    ASSERT_TRUE(settled(dialog));
    EXPECT_TRUE(dialog.message().startsWith(QStringLiteral("Server unreachable"))) << dialog.message().toStdString();
    EXPECT_EQ(client.baseUrl(), QUrl(nowhere));
    dialog.reject();
    EXPECT_EQ(client.baseUrl(), original);
}

TEST_F(RemoteLoginE2E, FromTheBundledBackendTheRememberedRemoteServerIsOfferedAndTheBundledOneNotRemembered) {
    {
        QSettings settings;
        settings.setValue(QStringLiteral("remote/server"), QStringLiteral("https://easel.example.com"));
    }
    const QUrl bundled = client.baseUrl();
    LoginDialog offered(&client, nullptr, bundled);
    EXPECT_EQ(offered.serverText(), QStringLiteral("https://easel.example.com"));

    // Signing in to the bundled backend itself leaves the remembered remote server alone.
    LoginDialog local(&client, nullptr, bundled);
    local.findChild<QLineEdit*>(QStringLiteral("server"))->setText(bundled.toString());
    fill(local, QStringLiteral("local@example.com"), kPassword);
    local.signUp();
    ASSERT_TRUE(settled(local));
    ASSERT_EQ(local.result(), QDialog::Accepted) << local.message().toStdString();
    const QSettings settings;
    EXPECT_EQ(settings.value(QStringLiteral("remote/server")).toString(), QStringLiteral("https://easel.example.com"));
    EXPECT_FALSE(settings.contains(QStringLiteral("remote/email")));
}

}  // namespace
}  // namespace easel::ui::e2e
