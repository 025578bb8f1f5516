// The desktop app as `easel` runs it on a fresh install: the bundled backend over Easel's real built-in
// model. A prompt typed into the playground comes back as a picture of that prompt (read by the same
// shape detector as the model's own tests), and the gallery holds it.

#include <gtest/gtest.h>

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QTemporaryDir>
#include <QtTest/QTest>
#include <memory>

#include "app/backend.h"
#include "builtin_model_dir.h"
#include "inference/engine.h"
#include "inference/image/image.h"
#include "models/model_registry.h"
#include "recording_presenter.h"
#include "server/http_server.h"
#include "shape_detector.h"
#include "temp_dir.h"
#include "ui/account_pane.h"
#include "ui/api_client.h"
#include "ui/gallery_pane.h"
#include "ui/generation_pane.h"
#include "ui/generation_queue.h"
#include "ui/main_window.h"
#include "ui/text_to_image_pane.h"
#include "ui_test_support.h"

namespace easel::ui::e2e {
namespace {

using easel::testing::builtinModelDir;

constexpr int kTimeoutMs = 60'000;

class DesktopWithBuiltinModel : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(std::filesystem::exists(builtinModelDir() / "model.json"))
            << "no built-in model at " << builtinModelDir() << " (it is committed: restore it with git)";
        engine.loadModel(builtinModelDir());
        generator = std::make_unique<models::ModelRegistry>(engine);
        config.dataDir = dir.path() / "data";
        config.passwordCost = accounts::PasswordCost::fastForTests();
        backend = std::make_unique<app::Backend>(config, *generator);
        backend->start();
        server::HttpServerOptions options;
        options.port = 0;
        http = std::make_unique<server::HttpServer>(options, backend->makeRouter("e2e", "cpu"));
        http->start();
        client = std::make_unique<ApiClient>(QUrl(QStringLiteral("http://127.0.0.1:%1").arg(http->port())));

        // Local mode as desktop_main does it.
        window = std::make_unique<MainWindow>(client.get(), &dialogs);
        window->queue()->setPollInterval(50);
        window->resize(1200, 800);
        window->show();
        const auto owner = service::ensureDesktopOwner(backend->accounts(), config.dataDir);
        client->setSessionToken(QString::fromStdString(owner.sessionToken));
        client->setApiKey(QString::fromStdString(owner.apiKey));
        window->reloadFromServer();
        ASSERT_TRUE(waitFor(
            [&] { return window->accountPane()->account().email == QString::fromStdString(owner.email); }, kTimeoutMs));
    }
    void TearDown() override {
        window.reset();
        if (http) http->stop();
        if (backend) backend->stop();
    }

    // Types the prompt and presses Ctrl+Enter; returns the server's PNG of the result, via the gallery's
    // "Save as".
    inference::Image generate(const QString& prompt, int galleryCount) {
        auto* pane = window->textToImagePane();
        window->tabs()->setCurrentWidget(pane);
        auto* edit = pane->findChild<QPlainTextEdit*>(QStringLiteral("prompt"));
        edit->clear();
        edit->setFocus();
        QTest::keyClicks(edit, prompt);
        // A fixed seed, typed as a user would: with a random one the built-in model misdraws about one
        // shape in ten (held-out accuracy 0.896), and the test failed at random.
        auto* random = pane->findChild<QCheckBox*>(QStringLiteral("random_seed"));
        if (random->isChecked()) QTest::mouseClick(random, Qt::LeftButton);
        auto* seed = pane->findChild<QLineEdit*>(QStringLiteral("seed"));
        seed->clear();
        QTest::keyClicks(seed, QStringLiteral("1234"));
        edit->setFocus();
        QTest::keyClick(edit, Qt::Key_Return, Qt::ControlModifier);
        EXPECT_TRUE(waitFor([&] { return window->gallery()->shownImages() == galleryCount; }, kTimeoutMs));
        window->gallery()->selectImage(0);
        QTemporaryDir tmp;
        const QString path = tmp.filePath(QStringLiteral("result.png"));
        // The list shows an entry before its image bytes have arrived (under load, seconds later).
        EXPECT_TRUE(waitFor([&] { return window->gallery()->saveSelected(path); }, kTimeoutMs));
        QFile file(path);
        if (!file.open(QIODevice::ReadOnly)) return {};
        const QByteArray bytes = file.readAll();
        const std::vector<std::uint8_t> png(bytes.begin(), bytes.end());
        const auto text = inference::readPngText(png);
        EXPECT_NE(text.count("parameters") ? text.at("parameters").find("Seed: 1234,") : std::string::npos,
                  std::string::npos)
            << "the typed seed was not used: "
            << (text.count("parameters") ? text.at("parameters") : "(no parameters)");
        return inference::decodeImage(png);
    }

    easel::testing::TempDir dir;
    inference::Engine engine;
    std::unique_ptr<models::ModelRegistry> generator;
    app::BackendConfig config;
    std::unique_ptr<app::Backend> backend;
    std::unique_ptr<server::HttpServer> http;
    std::unique_ptr<ApiClient> client;
    easel::ui::testing::RecordingPresenter dialogs;
    std::unique_ptr<MainWindow> window;
};

TEST_F(DesktopWithBuiltinModel, TypedPromptsAreDrawnAndTheGalleryGrows) {
    auto* model = window->textToImagePane()->findChild<QComboBox*>(QStringLiteral("model"));
    ASSERT_TRUE(waitFor([&] { return model->count() == 2; }, kTimeoutMs));  // "Server default" + the built-in model
    EXPECT_EQ(model->itemData(1).toString(), QStringLiteral("easel-shapes-64"));

    using inference::training::parseCaption;
    int count = 0;
    for (const char* prompt : {"a large red circle in the center on a white background",
                               "a large blue square at the bottom right on a black background"}) {
        const auto image = generate(QString::fromUtf8(prompt), ++count);
        ASSERT_EQ(image.width, 64) << prompt;
        const auto want = *parseCaption(prompt);
        const auto d = easel::testing::detectShapes(image);
        ASSERT_FALSE(d.shapes.empty()) << prompt;
        EXPECT_TRUE(easel::testing::matches(d.shapes[0], want.shapes[0])) << prompt;
        EXPECT_EQ(d.background, want.background) << prompt;
    }
    window->tabs()->setCurrentWidget(window->textToImagePane());
    QCoreApplication::processEvents();
    saveScreenshot(*window, QStringLiteral("builtin_desktop_text_to_image"));
    window->tabs()->setCurrentWidget(window->gallery());
    QCoreApplication::processEvents();
    saveScreenshot(*window, QStringLiteral("builtin_desktop_gallery"));
    EXPECT_TRUE(dialogs.errors.isEmpty()) << dialogs.errors.value(0).message.toStdString();
}

}  // namespace
}  // namespace easel::ui::e2e
