#include "ui/account_pane.h"

#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

#include "ui/api_client.h"
#include "ui/dialog_presenter.h"

namespace easel::ui {

namespace {

QLineEdit* passwordEdit(const QString& name, QWidget* parent) {
    auto* edit = new QLineEdit(parent);
    edit->setObjectName(name);
    edit->setEchoMode(QLineEdit::Password);
    return edit;
}

QPushButton* button(const QString& text, const QString& name, QWidget* parent) {
    auto* b = new QPushButton(text, parent);
    b->setObjectName(name);
    return b;
}

}  // namespace

AccountPane::AccountPane(ApiClient* client, DialogPresenter* dialogs, QWidget* parent)
    : QWidget(parent),
      m_client(client),
      m_dialogs(dialogs),
      m_email(new QLabel(this)),
      m_plan(new QLabel(this)),
      m_quota(new QProgressBar(this)),
      m_limits(new QLabel(this)),
      m_key(new QLineEdit(this)),
      m_oldPassword(passwordEdit(QStringLiteral("old_password"), this)),
      m_newPassword(passwordEdit(QStringLiteral("new_password"), this)),
      m_confirmPassword(passwordEdit(QStringLiteral("confirm_password"), this)),
      m_replaceKey(new QCheckBox(tr("Also replace the API key (if the password may have leaked)"), this)),
      m_usage(new QTableWidget(0, 4, this)) {
    m_quota->setObjectName(QStringLiteral("quota"));
    m_limits->setWordWrap(true);
    auto* accountBox = new QGroupBox(tr("Account"), this);
    auto* accountForm = new QFormLayout(accountBox);
    accountForm->addRow(tr("Email"), m_email);
    accountForm->addRow(tr("Plan"), m_plan);
    accountForm->addRow(tr("Quota"), m_quota);
    accountForm->addRow(tr("Limits"), m_limits);

    auto* keyBox = new QGroupBox(tr("API key"), this);
    m_key->setObjectName(QStringLiteral("api_key"));
    m_key->setReadOnly(true);
    m_key->setEchoMode(QLineEdit::Password);
    m_key->setPlaceholderText(tr("hidden: View… asks for your password"));
    auto* keyRow = new QHBoxLayout;
    auto* view = button(tr("&View…"), QStringLiteral("view_key"), keyBox);
    auto* copy = button(tr("&Copy"), QStringLiteral("copy_key"), keyBox);
    auto* regenerate = button(tr("&Regenerate…"), QStringLiteral("regenerate_key"), keyBox);
    keyRow->addWidget(view);
    keyRow->addWidget(copy);
    keyRow->addWidget(regenerate);
    keyRow->addStretch();
    auto* keyLayout = new QVBoxLayout(keyBox);
    keyLayout->addWidget(m_key);
    keyLayout->addLayout(keyRow);

    auto* passwordBox = new QGroupBox(tr("Change password"), this);
    auto* passwordForm = new QFormLayout(passwordBox);
    passwordForm->addRow(tr("Current"), m_oldPassword);
    passwordForm->addRow(tr("New"), m_newPassword);
    passwordForm->addRow(tr("New, again"), m_confirmPassword);
    m_replaceKey->setObjectName(QStringLiteral("replace_key"));
    passwordForm->addRow(QString(), m_replaceKey);
    auto* change = button(tr("Change &password"), QStringLiteral("change_password"), passwordBox);
    passwordForm->addRow(QString(), change);

    auto* usageBox = new QGroupBox(tr("Usage"), this);
    m_usage->setObjectName(QStringLiteral("usage"));
    m_usage->setHorizontalHeaderLabels({tr("Request"), tr("Time"), tr("Kind"), tr("Images")});
    m_usage->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
    m_usage->verticalHeader()->hide();
    m_usage->setEditTriggers(QAbstractItemView::NoEditTriggers);
    auto* usageLayout = new QVBoxLayout(usageBox);
    usageLayout->addWidget(m_usage);
    auto* reload = button(tr("Re&fresh"), QStringLiteral("refresh_account"), usageBox);
    auto* remove = button(tr("&Delete account…"), QStringLiteral("delete_account"), usageBox);
    auto* usageButtons = new QHBoxLayout;
    usageButtons->addWidget(reload);
    usageButtons->addStretch();
    usageButtons->addWidget(remove);
    usageLayout->addLayout(usageButtons);

    auto* left = new QVBoxLayout;
    left->addWidget(accountBox);
    left->addWidget(keyBox);
    left->addWidget(passwordBox);
    left->addStretch();
    auto* layout = new QHBoxLayout(this);
    layout->addLayout(left, 1);
    layout->addWidget(usageBox, 1);

    connect(view, &QPushButton::clicked, this, &AccountPane::viewKey);
    connect(copy, &QPushButton::clicked, this, &AccountPane::copyKey);
    connect(regenerate, &QPushButton::clicked, this, &AccountPane::regenerateKey);
    connect(change, &QPushButton::clicked, this, &AccountPane::changePassword);
    connect(reload, &QPushButton::clicked, this, &AccountPane::refresh);
    connect(remove, &QPushButton::clicked, this, &AccountPane::deleteAccount);
    showAccount({});
}

void AccountPane::refresh() {
    m_client->account(this, [this](const ApiResult& r) {
        if (!r.ok()) {
            m_dialogs->showError(this, *r.error);
            return;
        }
        showAccount(AccountInfo::fromJSON(r.json));
    });
    m_client->usage(this, [this](const ApiResult& r) {
        if (r.ok()) showUsage(usageFromJSON(r.json));
    });
}

void AccountPane::showAccount(const AccountInfo& a) {
    m_account = a;
    m_email->setText(a.email.isEmpty() ? tr("(not signed in)") : a.email);
    m_plan->setText(a.plan);
    if (a.quotaLimit) {
        m_quota->setRange(0, std::max(1, *a.quotaLimit));
        m_quota->setValue(std::min(a.quotaUsed, *a.quotaLimit));
    } else {
        m_quota->setRange(0, 1);
        m_quota->setValue(0);
    }
    m_quota->setFormat(a.quotaText());
    m_limits->setText(tr("%1 requests per minute · %2 queued · %3 at a time · up to %4 steps · priority %5")
                          .arg(a.requestsPerMinute)
                          .arg(a.maxQueued)
                          .arg(a.maxConcurrent)
                          .arg(a.maxSteps)
                          .arg(a.priority));
    if (!a.email.isEmpty()) emit accountLoaded(a);
}

void AccountPane::showUsage(const QList<UsageEntry>& usage) {
    m_usage->setRowCount(static_cast<int>(usage.size()));
    for (int row = 0; row < usage.size(); ++row) {
        const auto& u = usage[row];
        const QStringList cells = {QString::number(u.requestId), u.createdAt, u.kind, QString::number(u.images)};
        for (int col = 0; col < cells.size(); ++col) m_usage->setItem(row, col, new QTableWidgetItem(cells[col]));
    }
}

void AccountPane::showKey(const QString& key) {
    m_key->setText(key);
    m_key->setEchoMode(QLineEdit::Normal);
}

void AccountPane::viewKey() { revealKey(false); }

void AccountPane::copyKey() {
    if (m_key->echoMode() == QLineEdit::Normal && !m_key->text().isEmpty()) {
        QApplication::clipboard()->setText(m_key->text());
        return;
    }
    revealKey(true);
}

void AccountPane::revealKey(bool copy) {
    const auto password = m_dialogs->askText(this, tr("View API key"), tr("Your password:"), true);
    if (!password) return;
    m_client->viewApiKey(*password, this, [this, copy](const ApiResult& r) {
        if (!r.ok()) {
            m_dialogs->showError(this, *r.error);
            return;
        }
        showKey(r.json.value(QStringLiteral("api_key")).toString());
        if (copy) QApplication::clipboard()->setText(m_key->text());
    });
}

void AccountPane::regenerateKey() {
    if (!m_dialogs->confirm(this, tr("Regenerate API key"),
                            tr("A new key replaces the current one, and the old key stops working at once: "
                               "scripts and apps that use it will be refused until you give them the new key.\n\n"
                               "Regenerate the key?"))) {
        return;
    }
    const auto password = m_dialogs->askText(this, tr("Regenerate API key"), tr("Your password:"), true);
    if (!password) return;
    m_client->regenerateApiKey(*password, this, [this](const ApiResult& r) {
        if (!r.ok()) {
            m_dialogs->showError(this, *r.error);
            return;
        }
        showKey(r.json.value(QStringLiteral("api_key")).toString());
    });
}

void AccountPane::changePassword() {
    if (m_newPassword->text() != m_confirmPassword->text()) {
        m_dialogs->showMessage(this, tr("Change password"), tr("The two new passwords differ."));
        return;
    }
    const bool replaceKey = m_replaceKey->isChecked();
    m_client->changePassword(m_oldPassword->text(), m_newPassword->text(), replaceKey, this,
                             [this, replaceKey](const ApiResult& r) {
                                 if (!r.ok()) {
                                     m_dialogs->showError(this, *r.error);
                                     return;
                                 }
                                 for (auto* edit : {m_oldPassword, m_newPassword, m_confirmPassword}) edit->clear();
                                 m_replaceKey->setChecked(false);
                                 if (replaceKey) showKey(r.json.value(QStringLiteral("api_key")).toString());
                                 m_dialogs->showMessage(this, tr("Change password"),
                                                        replaceKey ? tr("Your password was changed and the API key "
                                                                        "replaced: the old key no longer works.")
                                                                   : tr("Your password was changed."));
                             });
}

void AccountPane::deleteAccount() {
    const auto typed = m_dialogs->askText(
        this, tr("Delete account"),
        tr("This deletes the account %1 for good: its images, API keys and models are purged from the server.\n"
           "Type the account's email to confirm:")
            .arg(m_account.email),
        false);
    if (!typed) return;
    if (typed->trimmed() != m_account.email || m_account.email.isEmpty()) {
        m_dialogs->showMessage(this, tr("Delete account"), tr("The email did not match; nothing was deleted."));
        return;
    }
    const auto password = m_dialogs->askText(this, tr("Delete account"), tr("Your password:"), true);
    if (!password) return;
    m_client->deleteAccount(*password, this, [this](const ApiResult& r) {
        if (!r.ok()) {
            m_dialogs->showError(this, *r.error);
            return;
        }
        m_client->setSessionToken({});
        m_client->setApiKey({});
        showAccount({});
        emit accountDeleted();
    });
}

}  // namespace easel::ui
