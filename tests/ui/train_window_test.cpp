// The Train tab inside the window: a finished training reloads the model list, so the new model
// shows up in the generation tabs' model picker (DreamBooth) or LoRA picker (LoRA).

#include <gtest/gtest.h>

#include <QAction>
#include <QComboBox>
#include <QLineEdit>
#include <QMenu>
#include <QSpinBox>
#include <QTabWidget>
#include <QTemporaryDir>

#include "fake_easel_backend.h"
#include "fake_training_routes.h"
#include "recording_presenter.h"
#include "ui/account_pane.h"
#include "ui/gallery_pane.h"
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

using testing::FakeEaselBackend;
using testing::FakeTrainingRoutes;
using testing::RecordedRequest;
using testing::RecordingPresenter;

struct TrainWindowFixture : ::testing::Test {
    FakeEaselBackend backend;
    FakeTrainingRoutes routes;
    ApiClient client{backend.url()};
    RecordingPresenter dialogs;
    QTemporaryDir dir;
    std::unique_ptr<MainWindow> window;

    void SetUp() override {
        backend.extraRoutes = [this](const RecordedRequest& r) { return routes.handle(r); };
        routes.apiKey = backend.apiKey;
        client.setApiKey(backend.apiKey);
        client.setSessionToken(backend.token);
        window = std::make_unique<MainWindow>(&client, &dialogs);
        window->trainPane()->job()->setPollInterval(20);
        window->resize(1200, 800);
        window->show();
        EXPECT_TRUE(
            waitFor([&] { return window->accountPane()->account().email == QStringLiteral("owner@easel.local"); }));
        // The base model list arrives with the window's model list.
        EXPECT_TRUE(waitFor(
            [&] { return window->trainPane()->findChild<QComboBox*>(QStringLiteral("base_model"))->count() == 1; }));
    }

    // Trains `category` ("stable_diffusion" or "lora") to the end; the fake installs the result as
    // the real server does once the model is ready.
    void train(TrainingMethod method, const QString& modelId, const QString& category) {
        routes.modelId = modelId;
        routes.statusScript = {
            FakeTrainingRoutes::status(QStringLiteral("training_started"), 3, 6, 4, FakeTrainingRoutes::falling(3)),
            FakeTrainingRoutes::status(QStringLiteral("model_ready"), 6, 6)};
        routes.onModelReady = [this, modelId, category] {
            if (!backend.extraModels.isEmpty()) return;
            backend.extraModels.append(QJsonObject{{QStringLiteral("model_id"), modelId},
                                                   {QStringLiteral("name"), modelId},
                                                   {QStringLiteral("model_category"), category},
                                                   {QStringLiteral("family"), QStringLiteral("sd1")}});
        };
        TrainPane* pane = window->trainPane();
        window->tabs()->setCurrentWidget(pane);
        QImage image(32, 32, QImage::Format_RGB32);
        image.fill(Qt::darkYellow);
        const QString path = dir.filePath(QStringLiteral("subject.png"));
        ASSERT_TRUE(image.save(path));
        pane->addImageFiles({path});
        auto* methodBox = pane->findChild<QComboBox*>(QStringLiteral("train_method"));
        methodBox->setCurrentIndex(methodBox->findData(static_cast<int>(method)));
        pane->findChild<QLineEdit*>(QStringLiteral("instance_prompt"))->setText(QStringLiteral("a zwx star"));
        pane->findChild<QLineEdit*>(QStringLiteral("class_prompt"))->setText(QStringLiteral("a star"));
        pane->startTraining();
        ASSERT_TRUE(waitFor([&] { return !pane->lossPlot()->points().isEmpty(); }));
        saveScreenshot(*window, QStringLiteral("train_pane_window"));
        ASSERT_TRUE(waitFor([&] { return !pane->job()->active(); }));
    }
};

TEST_F(TrainWindowFixture, HasATrainTabNextToTheGenerationPanes) {
    const int train = window->tabs()->indexOf(window->trainPane());
    ASSERT_GE(train, 0);
    EXPECT_EQ(window->tabs()->indexOf(window->textToImagePane()), 0);
    EXPECT_LT(train, window->tabs()->indexOf(window->gallery()));
}

TEST_F(TrainWindowFixture, ATrainedModelAppearsInTheModelPickerOfTheGenerationTabs) {
    train(TrainingMethod::DreamBooth, QStringLiteral("zwx-star"), QStringLiteral("stable_diffusion"));
    auto* models = window->textToImagePane()->form()->findChild<QComboBox*>(QStringLiteral("model"));
    ASSERT_TRUE(waitFor([&] { return models->findData(QStringLiteral("zwx-star")) >= 0; }));
    // ... and as a base model for the next training.
    auto* base = window->trainPane()->findChild<QComboBox*>(QStringLiteral("base_model"));
    EXPECT_GE(base->findData(QStringLiteral("zwx-star")), 0);
    EXPECT_TRUE(dialogs.errors.isEmpty());
}

TEST_F(TrainWindowFixture, ATrainedLoRAAppearsInTheLoRAPicker) {
    train(TrainingMethod::LoRA, QStringLiteral("zwx-star-lora"), QStringLiteral("lora"));
    const QMenu* menu = window->textToImagePane()->form()->loraPicker()->loraMenu();
    ASSERT_TRUE(waitFor([&] {
        for (const QAction* a : menu->actions()) {
            if (a->data().toString() == QStringLiteral("zwx-star-lora")) return true;
        }
        return false;
    }));
    auto* models = window->textToImagePane()->form()->findChild<QComboBox*>(QStringLiteral("model"));
    EXPECT_LT(models->findData(QStringLiteral("zwx-star-lora")), 0);
}

}  // namespace
}  // namespace easel::ui
