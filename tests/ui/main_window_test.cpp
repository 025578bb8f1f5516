#include "ui/main_window.h"

#include <gtest/gtest.h>

#include <QApplication>
#include <QClipboard>
#include <QDoubleSpinBox>
#include <QJsonArray>
#include <QLineEdit>
#include <QMenu>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest/QTest>

#include "fake_easel_backend.h"
#include "recording_presenter.h"
#include "ui/account_pane.h"
#include "ui/gallery_pane.h"
#include "ui/generation_queue.h"
#include "ui/image_to_image_pane.h"
#include "ui/infotext.h"
#include "ui/inpaint_pane.h"
#include "ui/lora_picker.h"
#include "ui/mask_canvas.h"
#include "ui/parameter_form.h"
#include "ui/text_to_image_pane.h"
#include "ui_test_support.h"

namespace easel::ui {
namespace {

using testing::FakeEaselBackend;
using testing::RecordingPresenter;

struct WindowFixture : ::testing::Test {
    FakeEaselBackend backend;
    ApiClient client{backend.url()};
    RecordingPresenter dialogs;
    std::unique_ptr<MainWindow> window;

    void SetUp() override {
        client.setApiKey(backend.apiKey);
        client.setSessionToken(backend.token);
        window = std::make_unique<MainWindow>(&client, &dialogs);
        window->queue()->setPollInterval(20);
        window->resize(1200, 800);
        window->show();
        // Models, the (empty) gallery and the account load at start.
        EXPECT_TRUE(
            waitFor([&] { return window->accountPane()->account().email == QStringLiteral("owner@easel.local"); }));
    }

    QList<testing::RecordedRequest> requestsTo(const QString& path) const {
        QList<testing::RecordedRequest> out;
        for (const auto& r : backend.requests()) {
            if (r.path == path) out.append(r);
        }
        return out;
    }
};

TEST_F(WindowFixture, TypePromptCtrlEnterImageAppearsAndGalleryGrows) {
    auto* pane = window->textToImagePane();
    auto* prompt = pane->findChild<QPlainTextEdit*>(QStringLiteral("prompt"));
    ASSERT_NE(prompt, nullptr);
    prompt->setFocus();
    QTest::keyClicks(prompt, QStringLiteral("a red star"));
    QTest::keyClick(prompt, Qt::Key_Return, Qt::ControlModifier);
    EXPECT_EQ(prompt->toPlainText(), QStringLiteral("a red star"));  // Ctrl+Enter did not insert a newline
    ASSERT_EQ(window->queue()->activeJobs().size(), 1);
    auto* progress = window->findChild<QProgressBar*>(QStringLiteral("progress"));
    ASSERT_TRUE(waitFor([&] { return progress->value() > 0; }));
    saveScreenshot(*window, QStringLiteral("text_to_image_running"));
    ASSERT_TRUE(waitFor([&] { return window->gallery()->shownImages() == 1; }));
    auto* result = pane->findChild<QLabel*>(QStringLiteral("result"));
    ASSERT_TRUE(waitFor([&] { return !result->pixmap().isNull(); }));
    const auto body = requestsTo(QStringLiteral("/api/v6/images/text2img")).value(0).json();
    EXPECT_EQ(body.value(QStringLiteral("prompt")).toString(), QStringLiteral("a red star"));
    EXPECT_EQ(body.value(QStringLiteral("model_id")).toString(), QString());  // server default until picked
    ASSERT_TRUE(waitFor([&] { return window->accountPane()->account().quotaUsed == 8; }));
    EXPECT_TRUE(dialogs.errors.isEmpty());
    // Reuse last seed now knows the server's seed.
    QMetaObject::invokeMethod(pane->form()->findChild<QPushButton*>(QStringLiteral("reuse_seed")), "click");
    EXPECT_EQ(pane->params().seed, 1234);
    saveScreenshot(*window, QStringLiteral("text_to_image"));
}

TEST_F(WindowFixture, EscCancelsTheRunningRequest) {
    backend.pollsPerJob = 1000;
    window->textToImagePane()->setParams([] {
        GenerationParams p;
        p.prompt = QStringLiteral("slow");
        return p;
    }());
    window->generate(window->textToImagePane());
    window->generate(window->textToImagePane());
    ASSERT_TRUE(waitFor([&] { return window->queue()->activeJobs().value(1).serverId != 0; }));
    saveScreenshot(*window, QStringLiteral("queue"));
    QTest::keyClick(window.get(), Qt::Key_Escape);
    ASSERT_TRUE(waitFor([&] { return window->queue()->activeJobs().size() == 1; }));
    EXPECT_EQ(backend.cancelled, QList<qint64>{12});
}

TEST_F(WindowFixture, InpaintSendsThePaintedMask) {
    auto* pane = window->inpaintPane();
    window->tabs()->setCurrentWidget(pane);
    QImage init(64, 64, QImage::Format_RGB32);
    init.fill(QColor(40, 90, 200));
    pane->setInitImage(init);
    GenerationParams p = pane->params();
    p.prompt = QStringLiteral("a yellow circle");
    pane->setParams(p);
    window->generate(pane);
    EXPECT_EQ(dialogs.messages.size(), 1);  // nothing painted yet
    pane->canvas()->setBrushSize(16);
    pane->canvas()->paintStroke({16, 32}, {48, 32});
    window->generate(pane);
    ASSERT_TRUE(waitFor([&] { return !requestsTo(QStringLiteral("/api/v6/images/inpaint")).isEmpty(); }));
    const auto body = requestsTo(QStringLiteral("/api/v6/images/inpaint"))[0].json();
    const auto mask =
        QImage::fromData(QByteArray::fromBase64(body.value(QStringLiteral("mask_image")).toString().toLatin1()));
    EXPECT_EQ(mask.size(), QSize(64, 64));
    EXPECT_EQ(qGray(mask.pixel(32, 32)), 255);
    EXPECT_EQ(qGray(mask.pixel(32, 4)), 0);
    EXPECT_TRUE(body.contains(QStringLiteral("strength")));
    saveScreenshot(*window, QStringLiteral("inpaint"));
}

TEST_F(WindowFixture, GalleryUseAsInitFeedsImageToImage) {
    window->textToImagePane()->setParams([] {
        GenerationParams p;
        p.prompt = QStringLiteral("a blue square");
        p.seed = 77;
        return p;
    }());
    window->generate(window->textToImagePane());
    ASSERT_TRUE(waitFor([&] { return window->gallery()->shownImages() == 1; }));
    window->tabs()->setCurrentWidget(window->gallery());
    window->gallery()->selectImage(0);
    ASSERT_TRUE(waitFor([&] {
        QTemporaryDir dir;
        return window->gallery()->saveSelected(dir.filePath(QStringLiteral("x.png")));
    }));
    saveScreenshot(*window, QStringLiteral("gallery"));
    // "Save as PNG…" to a folder that does not exist says so instead of doing nothing.
    QPushButton* saveButton = nullptr;
    for (auto* b : window->gallery()->findChildren<QPushButton*>())
        if (b->text() == QStringLiteral("Save as PNG…")) saveButton = b;
    ASSERT_NE(saveButton, nullptr);
    dialogs.savePath = QStringLiteral("/nonexistent-easel-folder/x.png");
    const auto messagesBefore = dialogs.messages.size();
    saveButton->click();
    ASSERT_EQ(dialogs.messages.size(), messagesBefore + 1);
    EXPECT_TRUE(dialogs.messages.back().startsWith(QStringLiteral("Could not save: ")));
    EXPECT_TRUE(dialogs.messages.back().contains(QStringLiteral("/nonexistent-easel-folder/x.png")));
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("saved.png"));
    ASSERT_TRUE(window->gallery()->saveSelected(path));
    const auto restored = paramsFromInfotext(QImage(path).text(QStringLiteral("parameters")));
    ASSERT_TRUE(restored);
    EXPECT_EQ(restored->prompt, QStringLiteral("a blue square"));
    EXPECT_EQ(restored->seed, 77);
    window->gallery()->copySelectedSeed();
    EXPECT_EQ(QApplication::clipboard()->text(), QStringLiteral("77"));
    window->gallery()->useSelectedAsInit();
    EXPECT_EQ(window->tabs()->currentWidget(), window->imageToImagePane());
    EXPECT_EQ(window->imageToImagePane()->images().init.size(), QSize(64, 64));
    GenerationParams p = window->imageToImagePane()->params();
    p.prompt = QStringLiteral("make it green");
    window->imageToImagePane()->setParams(p);
    window->generate(window->imageToImagePane());
    ASSERT_TRUE(waitFor([&] { return !requestsTo(QStringLiteral("/api/v6/images/img2img")).isEmpty(); }));
    EXPECT_FALSE(requestsTo(QStringLiteral("/api/v6/images/img2img"))[0]
                     .json()
                     .value(QStringLiteral("init_image"))
                     .toString()
                     .isEmpty());
    saveScreenshot(*window, QStringLiteral("image_to_image"));
    // Opening the saved PNG restores its parameters into the current pane.
    window->tabs()->setCurrentWidget(window->textToImagePane());
    ASSERT_TRUE(window->openImageParameters(path));
    EXPECT_EQ(window->textToImagePane()->params().prompt, QStringLiteral("a blue square"));
}

TEST_F(WindowFixture, RegeneratedKeyIsShownAndTheOldOneIsRejected) {
    window->tabs()->setCurrentWidget(window->accountPane());
    const QString oldKey = client.apiKey();
    dialogs.answers.enqueue(backend.password);  // the pane asks for it after the confirmation
    window->accountPane()->regenerateKey();
    ASSERT_EQ(dialogs.confirmations.size(), 1);
    EXPECT_TRUE(dialogs.confirmations[0].contains(QStringLiteral("stops working at once")));
    auto* shown = window->accountPane()->findChild<QLineEdit*>(QStringLiteral("api_key"));
    ASSERT_TRUE(waitFor([&] { return shown->text() == QStringLiteral("key-2"); }));
    EXPECT_EQ(shown->echoMode(), QLineEdit::Normal);
    EXPECT_EQ(client.apiKey(), QStringLiteral("key-2"));
    ApiClient stale(backend.url());
    stale.setApiKey(oldKey);
    std::optional<ApiResult> r;
    stale.models(nullptr, [&](const ApiResult& result) { r = result; });
    ASSERT_TRUE(waitFor([&] { return r.has_value(); }));
    EXPECT_EQ(r->error->kind, ApiErrorKind::Unauthorized);
    saveScreenshot(*window, QStringLiteral("account"));
}

TEST_F(WindowFixture, ViewKeyAsksForThePasswordAndDeleteNeedsTypedEmail) {
    auto* account = window->accountPane();
    dialogs.answers.enqueue(QStringLiteral("wrong"));
    account->viewKey();
    ASSERT_TRUE(waitFor([&] { return dialogs.errors.size() == 1; }));
    EXPECT_TRUE(dialogs.secrets.value(0));
    EXPECT_EQ(dialogs.errors[0].kind, ApiErrorKind::Unauthorized);
    dialogs.answers.enqueue(QStringLiteral("not-the-email"));
    account->deleteAccount();
    EXPECT_TRUE(dialogs.messages.last().contains(QStringLiteral("did not match")));
    EXPECT_TRUE(dialogs.questions.last().contains(QStringLiteral("purged")));
}

TEST_F(WindowFixture, QuotaExhaustedShowsADialog) {
    backend.quotaExhausted = true;
    GenerationParams p;
    p.prompt = QStringLiteral("one more");
    window->textToImagePane()->setParams(p);
    window->generate(window->textToImagePane());
    ASSERT_TRUE(waitFor([&] { return !dialogs.errors.isEmpty(); }));
    EXPECT_EQ(dialogs.errors[0].kind, ApiErrorKind::QuotaExhausted);
    EXPECT_EQ(dialogs.errors[0].title(), QStringLiteral("Quota exhausted"));
}

// The server also lists two LoRAs and an embedding for the built-in model's family, and an SDXL LoRA.
struct LoraWindowFixture : WindowFixture {
    void SetUp() override {
        auto adapter = [](const char* id, const char* category, const char* family = "sd1") {
            return QJsonObject{{QStringLiteral("model_id"), QString::fromLatin1(id)},
                               {QStringLiteral("name"), QString::fromLatin1(id)},
                               {QStringLiteral("model_category"), QString::fromLatin1(category)},
                               {QStringLiteral("family"), QString::fromLatin1(family)}};
        };
        backend.extraModels = {adapter("pixel-art", "lora"), adapter("ink-wash", "lora"),
                               adapter("xl-detail", "lora", "sdxl"), adapter("emb-style", "embeddings")};
        WindowFixture::SetUp();
        ASSERT_TRUE(waitFor([&] { return !window->textToImagePane()->form()->loraPicker()->loraMenu()->isEmpty(); }));
    }
};

TEST_F(LoraWindowFixture, RecallFromAPngFillsThePickerAndNamesMissingLoras) {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("made-elsewhere.png"));
    QImage image(64, 64, QImage::Format_RGB32);
    image.fill(Qt::gray);
    image.setText(QStringLiteral("parameters"),
                  QStringLiteral("a red star, <lora:pixel-art:0.7> <lora:gone-lora:0.5> <lora:xl-detail:1.5>\n"
                                 "Steps: 20, Sampler: Euler a, CFG scale: 1, Seed: 9, Size: 64x64, "
                                 "Lora hashes: \"pixel-art: abcdef123456, gone-lora: 0123456789ab, "
                                 "xl-detail: 00112233aabb\""));
    ASSERT_TRUE(image.save(path));
    auto* pane = window->textToImagePane();
    window->tabs()->setCurrentWidget(pane);
    ASSERT_TRUE(window->openImageParameters(path));
    EXPECT_EQ(pane->params().prompt, QStringLiteral("a red star"));
    EXPECT_EQ(pane->params().loras, (QList<LoraChoice>{{QStringLiteral("pixel-art"), 0.7},
                                                       {QStringLiteral("gone-lora"), 0.5},
                                                       {QStringLiteral("xl-detail"), 1.5}}));
    ASSERT_EQ(dialogs.messages.size(), 1);
    EXPECT_TRUE(dialogs.messages[0].contains(QStringLiteral("does not have: gone-lora.")));
    EXPECT_TRUE(dialogs.messages[0].contains(QStringLiteral("than the selected one: xl-detail.")));

    // Without the missing one, and with a second LoRA and the embedding, it goes to the server.
    LoraPicker* picker = pane->form()->loraPicker();
    picker->removeLora(QStringLiteral("gone-lora"));
    picker->removeLora(QStringLiteral("xl-detail"));
    for (QAction* a : picker->loraMenu()->actions()) {
        if (a->text() == QStringLiteral("ink-wash")) a->trigger();
    }
    picker->findChild<QWidget*>(QStringLiteral("lora_row_ink-wash"))
        ->findChild<QDoubleSpinBox*>(QStringLiteral("lora_strength"))
        ->setValue(-0.35);
    picker->embeddingMenu()->actions().value(0)->trigger();
    EXPECT_EQ(pane->params().prompt, QStringLiteral("a red star emb-style"));
    window->generate(pane);
    ASSERT_TRUE(waitFor([&] { return !requestsTo(QStringLiteral("/api/v6/images/text2img")).isEmpty(); }));
    const auto body = requestsTo(QStringLiteral("/api/v6/images/text2img"))[0].json();
    EXPECT_EQ(body.value(QStringLiteral("prompt")).toString(), QStringLiteral("a red star emb-style"));
    EXPECT_EQ(body.value(QStringLiteral("lora_model")).toString(), QStringLiteral("pixel-art,ink-wash"));
    EXPECT_EQ(body.value(QStringLiteral("lora_strength")).toString(), QStringLiteral("0.7,-0.35"));
    EXPECT_EQ(body.value(QStringLiteral("embeddings_model")).toString(), QStringLiteral("emb-style"));
    // Every pane has its own picker.
    EXPECT_TRUE(window->imageToImagePane()->params().loras.isEmpty());
    EXPECT_FALSE(window->inpaintPane()->form()->loraPicker()->loraMenu()->isEmpty());
    saveScreenshot(*window, QStringLiteral("lora_picker"));
}

TEST(MainWindowTest, UnreachableServerShowsADialog) {
    QUrl url;
    {
        testing::FakeApiServer gone;
        url = gone.url();
    }
    ApiClient client(url);
    client.setApiKey(QStringLiteral("k"));
    RecordingPresenter dialogs;
    MainWindow window(&client, &dialogs);
    GenerationParams p;
    p.prompt = QStringLiteral("x");
    window.textToImagePane()->setParams(p);
    window.generate(window.textToImagePane());
    ASSERT_TRUE(waitFor([&] {
        return std::any_of(dialogs.errors.begin(), dialogs.errors.end(),
                           [](const ApiError& e) { return e.kind == ApiErrorKind::Unreachable; });
    }));
}

}  // namespace
}  // namespace easel::ui
