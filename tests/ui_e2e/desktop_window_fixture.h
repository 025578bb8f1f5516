#pragma once
// The desktop window over the real bundled backend, wired as app/desktop_main.cpp wires it (local
// mode) or signed in to a fresh free account (what remote mode does after the sign-in dialog).

#include <gtest/gtest.h>

#include <QPlainTextEdit>
#include <QProgressBar>
#include <QTabWidget>
#include <QtTest/QTest>
#include <memory>
#include <optional>

#include "desktop_backend.h"
#include "recording_presenter.h"
#include "ui/account_pane.h"
#include "ui/api_client.h"
#include "ui/gallery_pane.h"
#include "ui/generation_pane.h"
#include "ui/generation_queue.h"
#include "ui/main_window.h"
#include "ui_test_support.h"

namespace easel::ui::e2e {

class DesktopWindowTest : public ::testing::Test {
protected:
    static constexpr int kTimeoutMs = 15'000;

    // Local mode as desktop_main does it: the window first, then the owner's credentials, then a reload.
    void openLocalMode() {
        window = makeWindow();
        const auto owner = service::ensureDesktopOwner(server.backend->accounts(), server.config.dataDir);
        ownerEmail = owner.email;
        client.setSessionToken(QString::fromStdString(owner.sessionToken));
        client.setApiKey(QString::fromStdString(owner.apiKey));
        window->reloadFromServer();
        ASSERT_TRUE(waitFor(
            [&] { return window->accountPane()->account().email == QString::fromStdString(owner.email); }, kTimeoutMs));
    }

    // A new free account through the REST API (sign-up gives the key, login the session), then a reload.
    void openFreeAccount(const QString& email) {
        window = makeWindow();
        const auto signup = await([&](ApiCallback done) { client.signup(email, kPassword, nullptr, done); });
        ASSERT_TRUE(signup.ok()) << signup.error->message.toStdString();
        const auto login = await([&](ApiCallback done) { client.login(email, kPassword, nullptr, done); });
        ASSERT_TRUE(login.ok()) << login.error->message.toStdString();
        window->reloadFromServer();
        ASSERT_TRUE(waitFor([&] { return window->accountPane()->account().email == email; }, kTimeoutMs));
    }

    std::unique_ptr<MainWindow> makeWindow() {
        auto w = std::make_unique<MainWindow>(&client, &dialogs);
        w->queue()->setPollInterval(50);
        w->resize(1200, 800);
        w->show();
        return w;
    }

    // Starts one ApiClient call and spins the event loop until its callback ran.
    ApiResult await(const std::function<void(ApiCallback)>& start) {
        std::optional<ApiResult> result;
        start([&](const ApiResult& r) { result = r; });
        EXPECT_TRUE(waitFor([&] { return result.has_value(); }, kTimeoutMs));
        return result.value_or(ApiResult{{}, unreachableError(QStringLiteral("no reply in time"))});
    }

    // Types the prompt into the pane and presses Ctrl+Enter, as a user would.
    void typePromptAndGenerate(GenerationPane* pane, const QString& text) {
        window->tabs()->setCurrentWidget(pane);
        auto* prompt = pane->findChild<QPlainTextEdit*>(QStringLiteral("prompt"));
        ASSERT_NE(prompt, nullptr);
        prompt->clear();
        prompt->setFocus();
        QTest::keyClicks(prompt, text);
        QTest::keyClick(prompt, Qt::Key_Return, Qt::ControlModifier);
    }

    bool waitIdle() {
        return waitFor([&] { return window->queue()->activeJobs().isEmpty(); }, kTimeoutMs);
    }

    void screenshot(QWidget* tab, const QString& name) {
        window->tabs()->setCurrentWidget(tab);
        QCoreApplication::processEvents();
        saveScreenshot(*window, name);
    }

    static inline const QString kPassword = QStringLiteral("correct horse battery");

    easel::testing::DesktopBackend server;
    ApiClient client{server.url()};
    easel::ui::testing::RecordingPresenter dialogs;
    std::string ownerEmail;
    std::unique_ptr<MainWindow> window;
};

}  // namespace easel::ui::e2e
