// The Train tab against a running Easel server, end to end: skipped unless EASEL_LIVE_SERVER names
// one, e.g.
//   easel-server --listen 127.0.0.1:17861 --data-dir /tmp/d &
//   EASEL_LIVE_SERVER=http://127.0.0.1:17861 easel_ui_tests --gtest_filter='TrainLive*'
// Each test signs up a fresh account (a free plan may hold one training) and trains the server's
// default model for a few steps, then checks that the result reaches the generation tabs.

#include <gtest/gtest.h>

#include <QAction>
#include <QComboBox>
#include <QLineEdit>
#include <QMenu>
#include <QSpinBox>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QUuid>

#include "recording_presenter.h"
#include "ui/lora_picker.h"
#include "ui/loss_plot.h"
#include "ui/main_window.h"
#include "ui/parameter_form.h"
#include "ui/text_to_image_pane.h"
#include "ui/train_pane.h"
#include "ui/training_job.h"
#include "ui_test_support.h"

namespace easel::ui {
namespace {

struct TrainLiveTest : ::testing::Test {
    std::unique_ptr<ApiClient> client;
    testing::RecordingPresenter dialogs;
    std::unique_ptr<MainWindow> window;
    QTemporaryDir dir;

    void SetUp() override {
        const QString url = qEnvironmentVariable("EASEL_LIVE_SERVER");
        if (url.isEmpty()) GTEST_SKIP() << "EASEL_LIVE_SERVER not set";
        client = std::make_unique<ApiClient>(QUrl(url));
        bool signedUp = false;
        const QString email = QUuid::createUuid().toString(QUuid::Id128) + QStringLiteral("@train.test");
        client->signup(email, QStringLiteral("train-live-1"), nullptr, [&](const ApiResult& r) {
            ASSERT_TRUE(r.ok()) << r.error->userText().toStdString();
            signedUp = true;
        });
        ASSERT_TRUE(waitFor([&] { return signedUp; }, 20000));
        window = std::make_unique<MainWindow>(client.get(), &dialogs);
        window->resize(1200, 800);
        window->show();
        window->tabs()->setCurrentWidget(window->trainPane());
        auto* base = window->trainPane()->findChild<QComboBox*>(QStringLiteral("base_model"));
        ASSERT_TRUE(waitFor([&] { return base->count() > 0; }, 20000));
    }

    // Trains with `method` on three coloured squares; returns the model id once ready.
    QString train(TrainingMethod method, const QString& screenshot) {
        TrainPane* pane = window->trainPane();
        QStringList files;
        for (const QColor colour : {QColor(Qt::red), QColor(Qt::blue), QColor(Qt::darkGreen)}) {
            QImage image(64, 64, QImage::Format_RGB32);
            image.fill(Qt::white);
            for (int y = 16; y < 48; ++y)
                for (int x = 16; x < 48; ++x) image.setPixelColor(x, y, colour);
            files << dir.filePath(colour.name().mid(1) + QStringLiteral(".png"));
            image.save(files.back());
        }
        EXPECT_EQ(pane->addImageFiles(files), 3);
        auto* methodBox = pane->findChild<QComboBox*>(QStringLiteral("train_method"));
        methodBox->setCurrentIndex(methodBox->findData(static_cast<int>(method)));
        pane->findChild<QLineEdit*>(QStringLiteral("instance_prompt"))->setText(QStringLiteral("a zwx square"));
        pane->findChild<QLineEdit*>(QStringLiteral("class_prompt"))->setText(QStringLiteral("a square"));
        pane->findChild<QSpinBox*>(QStringLiteral("train_steps"))->setValue(60);
        pane->startTraining();
        EXPECT_TRUE(waitFor([&] { return pane->lossPlot()->points().size() >= 10 || !pane->job()->active(); }, 120000));
        saveScreenshot(*window, screenshot);
        EXPECT_TRUE(waitFor([&] { return !pane->job()->active(); }, 600000));
        EXPECT_TRUE(dialogs.errors.isEmpty()) << dialogs.errors.value(0).userText().toStdString();
        EXPECT_TRUE(pane->job()->status().ready()) << pane->job()->status().stage.toStdString();
        saveScreenshot(*window, screenshot + QStringLiteral("_done"));
        return pane->job()->status().modelId;
    }
};

TEST_F(TrainLiveTest, ADreamBoothModelReachesTheModelPicker) {
    const QString modelId = train(TrainingMethod::DreamBooth, QStringLiteral("train_pane_live"));
    auto* models = window->textToImagePane()->form()->findChild<QComboBox*>(QStringLiteral("model"));
    EXPECT_TRUE(waitFor([&] { return models->findData(modelId) >= 0; }, 20000)) << modelId.toStdString();
}

TEST_F(TrainLiveTest, ALoRAReachesTheLoRAPicker) {
    const QString modelId = train(TrainingMethod::LoRA, QStringLiteral("train_pane_live_lora"));
    const QMenu* menu = window->textToImagePane()->form()->loraPicker()->loraMenu();
    EXPECT_TRUE(waitFor(
        [&] {
            for (const QAction* a : menu->actions()) {
                if (a->data().toString() == modelId) return true;
            }
            return false;
        },
        20000))
        << modelId.toStdString();
}

TEST_F(TrainLiveTest, CancelStopsARunningTraining) {
    TrainPane* pane = window->trainPane();
    QImage image(64, 64, QImage::Format_RGB32);
    image.fill(Qt::red);
    const QString path = dir.filePath(QStringLiteral("red.png"));
    ASSERT_TRUE(image.save(path));
    pane->addImageFiles({path});
    pane->findChild<QLineEdit*>(QStringLiteral("instance_prompt"))->setText(QStringLiteral("a zwx square"));
    pane->findChild<QLineEdit*>(QStringLiteral("class_prompt"))->setText(QStringLiteral("a square"));
    pane->findChild<QSpinBox*>(QStringLiteral("train_steps"))->setValue(TrainPane::kMaxSteps);
    pane->startTraining();
    ASSERT_TRUE(waitFor([&] { return pane->lossPlot()->points().size() >= 3; }, 120000));
    pane->cancelTraining();
    ASSERT_TRUE(waitFor([&] { return !pane->job()->active(); }, 60000));
    EXPECT_TRUE(pane->job()->status().cancelled()) << pane->job()->status().stage.toStdString();
    EXPECT_TRUE(dialogs.errors.isEmpty()) << dialogs.errors.value(0).userText().toStdString();
}

}  // namespace
}  // namespace easel::ui
