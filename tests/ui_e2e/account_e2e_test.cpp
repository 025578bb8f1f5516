// The account dashboard and the error dialogs against the real backend: key regeneration, the free
// plan's quota bar and its 402, rate limits while polling, and a server that is not there.

#include <QApplication>
#include <QCheckBox>
#include <QFile>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QStatusBar>
#include <QTcpServer>
#include <QTimer>

#include "desktop_window_fixture.h"
#include "ui/dialog_presenter.h"
#include "ui/text_to_image_pane.h"

namespace easel::ui::e2e {
namespace {

using AccountE2E = DesktopWindowTest;

QString ownerPassword(const std::filesystem::path& dataDir) {
    QFile file(QString::fromStdString((dataDir / "desktop-owner.json").string()));
    if (!file.open(QIODevice::ReadOnly)) return {};
    return QJsonDocument::fromJson(file.readAll()).object().value(QStringLiteral("password")).toString();
}

TEST_F(AccountE2E, RegeneratedKeyIsShownAndTheOldKeyIsRefused) {
    ASSERT_NO_FATAL_FAILURE(openLocalMode());
    auto* pane = window->accountPane();
    window->tabs()->setCurrentWidget(pane);
    const QString oldKey = client.apiKey();
    auto* shown = pane->findChild<QLineEdit*>(QStringLiteral("api_key"));
    EXPECT_EQ(shown->echoMode(), QLineEdit::Password);  // hidden until asked for

    dialogs.answers.enqueue(ownerPassword(server.config.dataDir));  // asked for after the confirmation
    QTest::mouseClick(pane->findChild<QPushButton*>(QStringLiteral("regenerate_key")), Qt::LeftButton);
    ASSERT_EQ(dialogs.confirmations.size(), 1);
    EXPECT_TRUE(dialogs.confirmations[0].contains(QStringLiteral("stops working at once")));
    ASSERT_TRUE(waitFor([&] { return !shown->text().isEmpty() && shown->text() != oldKey; }, kTimeoutMs));
    EXPECT_EQ(shown->echoMode(), QLineEdit::Normal);
    EXPECT_EQ(client.apiKey(), shown->text());
    screenshot(pane, QStringLiteral("e2e_account"));

    // The real server refuses the old key at once, for reading and for generating.
    ApiClient stale(server.url());
    stale.setApiKey(oldKey);
    const auto models = await([&](ApiCallback done) { stale.models(nullptr, done); });
    ASSERT_FALSE(models.ok());
    EXPECT_EQ(models.error->kind, ApiErrorKind::Unauthorized);
    EXPECT_EQ(models.error->httpStatus, 401);
    GenerationParams p;
    p.prompt = QStringLiteral("with the old key");
    const auto submit = await([&](ApiCallback done) {
        stale.submit(GenerationKind::Text2Img, requestBody(GenerationKind::Text2Img, p, oldKey), nullptr, done);
    });
    ASSERT_FALSE(submit.ok());
    EXPECT_EQ(submit.error->httpStatus, 401);
    EXPECT_TRUE(server.fake.started().empty());

    // The window goes on with the new key; View shows the same key after the password.
    ASSERT_NO_FATAL_FAILURE(typePromptAndGenerate(window->textToImagePane(), QStringLiteral("with the new key")));
    ASSERT_TRUE(waitFor([&] { return window->gallery()->shownImages() == 1; }, kTimeoutMs));
    const QString newKey = client.apiKey();
    shown->clear();
    dialogs.answers.enqueue(ownerPassword(server.config.dataDir));
    pane->viewKey();
    ASSERT_TRUE(waitFor([&] { return shown->text() == newKey; }, kTimeoutMs));
    EXPECT_TRUE(dialogs.errors.isEmpty()) << dialogs.errors.value(0).message.toStdString();
}

TEST_F(AccountE2E, ChangingThePasswordCanReplaceTheKeyToo) {
    ASSERT_NO_FATAL_FAILURE(openLocalMode());
    auto* pane = window->accountPane();
    window->tabs()->setCurrentWidget(pane);
    const QString oldKey = client.apiKey();
    const QString newPassword = QStringLiteral("a brand new passphrase");
    pane->findChild<QLineEdit*>(QStringLiteral("old_password"))->setText(ownerPassword(server.config.dataDir));
    pane->findChild<QLineEdit*>(QStringLiteral("new_password"))->setText(newPassword);
    pane->findChild<QLineEdit*>(QStringLiteral("confirm_password"))->setText(newPassword);
    auto* replace = pane->findChild<QCheckBox*>(QStringLiteral("replace_key"));
    ASSERT_NE(replace, nullptr);
    replace->setChecked(true);
    QTest::mouseClick(pane->findChild<QPushButton*>(QStringLiteral("change_password")), Qt::LeftButton);

    auto* shown = pane->findChild<QLineEdit*>(QStringLiteral("api_key"));
    ASSERT_TRUE(waitFor([&] { return !shown->text().isEmpty() && shown->text() != oldKey; }, kTimeoutMs));
    EXPECT_EQ(client.apiKey(), shown->text());
    ASSERT_FALSE(dialogs.messages.isEmpty());
    EXPECT_TRUE(dialogs.messages.last().contains(QStringLiteral("old key no longer works")))
        << dialogs.messages.last().toStdString();
    EXPECT_FALSE(replace->isChecked());

    ApiClient stale(server.url());
    stale.setApiKey(oldKey);
    const auto models = await([&](ApiCallback done) { stale.models(nullptr, done); });
    ASSERT_FALSE(models.ok());
    EXPECT_EQ(models.error->httpStatus, 401);
    const auto fresh = await([&](ApiCallback done) { client.models(nullptr, done); });
    EXPECT_TRUE(fresh.ok());
}

TEST_F(AccountE2E, FreePlanQuotaBarMovesThenTheQuotaDialogShows) {
    ASSERT_NO_FATAL_FAILURE(openFreeAccount(QStringLiteral("free@example.com")));
    auto* quota = window->accountPane()->findChild<QProgressBar*>(QStringLiteral("quota"));
    EXPECT_EQ(quota->format(), QStringLiteral("0 of 20 free generations"));
    EXPECT_EQ(quota->maximum(), 20);
    EXPECT_EQ(quota->value(), 0);

    auto* pane = window->textToImagePane();
    GenerationParams p = pane->params();
    p.prompt = QStringLiteral("four at once");
    p.samples = 4;
    p.steps = 10;
    pane->setParams(p);
    window->tabs()->setCurrentWidget(pane);
    for (int request = 1; request <= 5; ++request) {
        server.nextMinute();  // the free plan allows 10 requests a minute; each round makes about 7
        window->generate(pane);
        ASSERT_TRUE(waitFor([&] { return quota->value() == 4 * request; }, kTimeoutMs)) << "request " << request;
        ASSERT_TRUE(waitIdle());
        if (request == 1) {
            EXPECT_EQ(quota->format(), QStringLiteral("4 of 20 free generations"));
            screenshot(window->accountPane(), QStringLiteral("e2e_quota_4_of_20"));
        }
    }
    EXPECT_EQ(server.imagesUsed("free@example.com"), 20);
    EXPECT_TRUE(dialogs.errors.isEmpty()) << dialogs.errors.value(0).message.toStdString();

    server.nextMinute();
    window->generate(pane);
    ASSERT_TRUE(waitFor([&] { return !dialogs.errors.isEmpty(); }, kTimeoutMs));
    const ApiError error = dialogs.errors[0];
    EXPECT_EQ(error.kind, ApiErrorKind::QuotaExhausted);
    EXPECT_EQ(error.httpStatus, 402);
    EXPECT_TRUE(error.userText().contains(QStringLiteral("20"))) << error.userText().toStdString();
    EXPECT_EQ(server.fake.started().size(), 5u);
    EXPECT_TRUE(window->queue()->activeJobs().isEmpty());
    EXPECT_EQ(quota->format(), QStringLiteral("20 of 20 free generations"));
    ASSERT_TRUE(waitFor([&] { return window->gallery()->shownImages() == 20; }, kTimeoutMs));
    screenshot(window->accountPane(), QStringLiteral("e2e_quota_exhausted"));
    screenshot(window->gallery(), QStringLiteral("e2e_gallery_free"));
}

TEST_F(AccountE2E, RateLimitedPollsDoNotFailARunningJob) {
    ASSERT_NO_FATAL_FAILURE(openFreeAccount(QStringLiteral("busy@example.com")));
    // The last second of a minute, so the server says "retry in 1 s".
    server.toEndOfMinute();
    server.fake.block();
    int rateLimited = 0;
    QObject::connect(&client, &ApiClient::requestFailed, window.get(), [&](const ApiError& e) {
        if (e.kind == ApiErrorKind::RateLimited) ++rateLimited;
    });
    auto* pane = window->textToImagePane();
    ASSERT_NO_FATAL_FAILURE(typePromptAndGenerate(pane, QStringLiteral("a patient circle")));
    ASSERT_TRUE(waitFor(
        [&] {
            const auto jobs = window->queue()->activeJobs();
            return !jobs.isEmpty() && jobs[0].serverId != 0;
        },
        kTimeoutMs));
    // Polls count in the plan's wider read bucket (300 a minute): spend what is left of it here, as a
    // busy script with the same key would, rather than waiting ~15 s for the window's own polls to.
    int spent = 0;
    for (bool allowed = true; allowed && spent < 100'000; ++spent) {
        try {
            server.backend->platform().access().byKey(client.apiKey().toStdString());
        } catch (const ServiceError& e) {
            ASSERT_EQ(e.code(), ErrorCode::TooManyRequests) << e.what();
            allowed = false;
        }
    }
    ASSERT_LE(spent, 301);
    ASSERT_TRUE(waitFor([&] { return rateLimited > 0; }, kTimeoutMs));
    // The server still has the job: the window must keep it and poll again once allowed.
    EXPECT_EQ(window->queue()->activeJobs().size(), 1);
    EXPECT_TRUE(dialogs.errors.isEmpty()) << dialogs.errors.value(0).title().toStdString();
    server.nextMinute();
    server.fake.release();
    ASSERT_TRUE(
        waitFor([&] { return !pane->findChild<QLabel*>(QStringLiteral("result"))->pixmap().isNull(); }, kTimeoutMs));
    EXPECT_TRUE(waitIdle());
}

// The real MessageBoxPresenter, as the user sees it: each box runs a nested event loop, so a timer
// looks at the boxes on screen, keeps what they say and closes them.
TEST_F(AccountE2E, UnreachableServerShowsOneErrorDialog) {
    QTcpServer probe;  // a loopback port that nothing listens on once closed
    ASSERT_TRUE(probe.listen(QHostAddress::LocalHost, 0));
    const quint16 port = probe.serverPort();
    probe.close();
    client.setBaseUrl(QUrl(QStringLiteral("http://127.0.0.1:%1").arg(port)));
    client.setApiKey(QStringLiteral("some-key"));
    client.setSessionToken(QStringLiteral("some-session"));

    QList<QPointer<QMessageBox>> seen;
    QStringList shown;
    qsizetype mostAtOnce = 0;
    QTimer watcher;
    QObject::connect(&watcher, &QTimer::timeout, [&] {
        QList<QMessageBox*> open;
        for (auto* w : QApplication::topLevelWidgets()) {
            if (auto* box = qobject_cast<QMessageBox*>(w); box != nullptr && box->isVisible()) open.append(box);
        }
        mostAtOnce = std::max(mostAtOnce, open.size());
        for (auto* box : open) {
            if (!seen.contains(box)) {
                seen.append(box);
                continue;  // give a box stacked on top of this one a chance to appear first
            }
            shown.append(box->windowTitle() + QStringLiteral(": ") + box->text());
            if (shown.size() == 1) saveScreenshot(*box, QStringLiteral("e2e_unreachable_dialog"));
            box->reject();
        }
    });
    watcher.start(150);

    MessageBoxPresenter boxes;
    MainWindow w(&client, &boxes);
    w.resize(1200, 800);
    w.show();
    auto* status = w.statusBar()->findChild<QLabel*>();
    ASSERT_NE(status, nullptr);
    ASSERT_TRUE(waitFor([&] { return status->text().startsWith(QStringLiteral("Server unreachable")); }, kTimeoutMs))
        << status->text().toStdString();
    ASSERT_TRUE(waitFor([&] { return !shown.isEmpty(); }, kTimeoutMs));
    QTest::qWait(500);  // every start-up request has failed by now
    EXPECT_EQ(mostAtOnce, 1) << "boxes stacked on top of each other";
    ASSERT_EQ(shown.size(), 1) << shown.join(QStringLiteral(" | ")).toStdString();
    EXPECT_TRUE(shown[0].startsWith(QStringLiteral("Server unreachable: ")));
    EXPECT_TRUE(shown[0].contains(QStringLiteral("Check that the Easel server is running"))) << shown[0].toStdString();

    // A later action gets its own dialog.
    auto* prompt = w.textToImagePane()->findChild<QPlainTextEdit*>(QStringLiteral("prompt"));
    prompt->setPlainText(QStringLiteral("nobody home"));
    w.generate(w.textToImagePane());
    ASSERT_TRUE(waitFor([&] { return shown.size() == 2; }, kTimeoutMs));
    EXPECT_TRUE(shown[1].startsWith(QStringLiteral("Server unreachable: ")));
    EXPECT_TRUE(w.queue()->activeJobs().isEmpty());
    saveScreenshot(w, QStringLiteral("e2e_unreachable"));
}

}  // namespace
}  // namespace easel::ui::e2e
