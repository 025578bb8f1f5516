#include "ui/login_dialog.h"

#include <QDialogButtonBox>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QVBoxLayout>

#include "ui/api_client.h"

namespace easel::ui {

LoginDialog::LoginDialog(ApiClient* client, QWidget* parent, const QUrl& bundled)
    : QDialog(parent),
      m_client(client),
      m_originalServer(client->baseUrl()),
      m_bundledServer(bundled),
      m_server(new QLineEdit(this)),
      m_email(new QLineEdit(this)),
      m_password(new QLineEdit(this)),
      m_message(new QLabel(this)),
      m_signIn(new QPushButton(tr("&Sign in"), this)),
      m_signUp(new QPushButton(tr("&Create account"), this)) {
    setWindowTitle(tr("Sign in to Easel"));
    m_server->setObjectName(QStringLiteral("server"));
    m_email->setObjectName(QStringLiteral("email"));
    m_password->setObjectName(QStringLiteral("password"));
    m_password->setEchoMode(QLineEdit::Password);
    m_message->setWordWrap(true);
    m_message->setStyleSheet(QStringLiteral("color: palette(highlight)"));
    m_signIn->setDefault(true);
    const QSettings settings;
    const bool onBundled = !bundled.isEmpty() && client->baseUrl() == bundled;
    m_server->setText(onBundled ? settings.value(QStringLiteral("remote/server"), bundled.toString()).toString()
                                : client->baseUrl().toString());
    m_email->setText(settings.value(QStringLiteral("remote/email")).toString());
    if (!m_email->text().isEmpty()) m_password->setFocus();
    auto* form = new QFormLayout;
    form->addRow(tr("Se&rver"), m_server);
    form->addRow(tr("&Email"), m_email);
    form->addRow(tr("&Password"), m_password);
    auto* buttons = new QDialogButtonBox(this);
    buttons->addButton(m_signIn, QDialogButtonBox::AcceptRole);
    buttons->addButton(m_signUp, QDialogButtonBox::ActionRole);
    buttons->addButton(QDialogButtonBox::Cancel);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_message);
    layout->addWidget(buttons);
    // The buttons must not close the dialog themselves: it closes when the server said yes.
    disconnect(buttons, &QDialogButtonBox::accepted, this, nullptr);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(m_signIn, &QPushButton::clicked, this, &LoginDialog::signIn);
    connect(m_signUp, &QPushButton::clicked, this, &LoginDialog::signUp);
}

QString LoginDialog::email() const { return m_email->text().trimmed(); }
QString LoginDialog::serverText() const { return m_server->text(); }
QString LoginDialog::message() const { return m_message->text(); }

void LoginDialog::setBusy(bool busy) {
    m_signIn->setEnabled(!busy);
    m_signUp->setEnabled(!busy);
    if (busy) m_message->setText(tr("Contacting the server…"));
}

void LoginDialog::fail(const QString& text) {
    setBusy(false);
    m_message->setText(text);
}

void LoginDialog::signIn() {
    m_client->setBaseUrl(QUrl::fromUserInput(m_server->text()));
    setBusy(true);
    const QString password = m_password->text();
    m_client->login(email(), password, this, [this, password](const ApiResult& r) {
        if (!r.ok()) return fail(r.error->title() + QStringLiteral(": ") + r.error->userText());
        fetchKeyAndFinish(password);
    });
}

void LoginDialog::signUp() {
    m_client->setBaseUrl(QUrl::fromUserInput(m_server->text()));
    setBusy(true);
    m_client->signup(email(), m_password->text(), this, [this](const ApiResult& r) {
        if (!r.ok()) return fail(r.error->title() + QStringLiteral(": ") + r.error->userText());
        // Signup gave the API key; a login gives the session token the dashboard needs.
        m_client->login(email(), m_password->text(), this, [this](const ApiResult& login) {
            if (!login.ok()) return fail(login.error->userText());
            succeed();
        });
    });
}

void LoginDialog::fetchKeyAndFinish(const QString& password) {
    m_client->viewApiKey(password, this, [this](const ApiResult& r) {
        if (!r.ok()) return fail(r.error->userText());
        succeed();
    });
}

void LoginDialog::succeed() {
    if (m_client->baseUrl() != m_bundledServer) {
        QSettings settings;
        settings.setValue(QStringLiteral("remote/server"), m_client->baseUrl().toString());
        settings.setValue(QStringLiteral("remote/email"), email());
    }
    accept();
}

void LoginDialog::reject() {
    m_client->setBaseUrl(m_originalServer);
    QDialog::reject();
}

}  // namespace easel::ui
