#include "ui/train_pane.h"

#include <gtest/gtest.h>

#include <QComboBox>
#include <QFile>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include "fake_api_server.h"
#include "fake_training_routes.h"
#include "recording_presenter.h"
#include "ui/api_client.h"
#include "ui/loss_plot.h"
#include "ui/training_job.h"
#include "ui_test_support.h"

namespace easel::ui {
namespace {

using testing::CannedResponse;
using testing::FakeApiServer;
using testing::FakeTrainingRoutes;
using testing::RecordedRequest;
using testing::RecordingPresenter;

ModelInfo model(const QString& id, const QString& category, bool isDefault = false) {
    ModelInfo m;
    m.modelId = id;
    m.name = id;
    m.category = category;
    m.isDefault = isDefault;
    return m;
}

QImage decodeDataURL(const QString& url) {
    const QString base64 = url.section(QLatin1Char(','), 1);
    return QImage::fromData(QByteArray::fromBase64(base64.toLatin1()));
}

struct TrainPaneFixture : ::testing::Test {
    FakeApiServer server;
    FakeTrainingRoutes routes;
    ApiClient client{server.url()};
    RecordingPresenter dialogs;
    QTemporaryDir dir;
    std::unique_ptr<TrainPane> pane;

    void SetUp() override {
        server.setHandler(
            [this](const RecordedRequest& r) { return routes.handle(r).value_or(CannedResponse::json(404, {})); });
        client.setApiKey(routes.apiKey);
        pane = std::make_unique<TrainPane>(&client, &dialogs);
        pane->job()->setPollInterval(20);
        pane->setModels({model(QStringLiteral("sd15"), QStringLiteral("stable_diffusion")),
                         model(QStringLiteral("easel-shapes-64"), QStringLiteral("stable_diffusion"), true),
                         model(QStringLiteral("pixel-art"), QStringLiteral("lora"))});
        pane->resize(1000, 640);
        pane->show();
    }

    QString writeImage(const QString& name, QColor colour, QSize size, const char* format) {
        QImage image(size, QImage::Format_RGB32);
        image.fill(colour);
        const QString path = dir.filePath(name);
        EXPECT_TRUE(image.save(path, format));
        return path;
    }

    template <typename T>
    T* child(const char* name) const {
        auto* widget = pane->findChild<T*>(QString::fromLatin1(name));
        EXPECT_NE(widget, nullptr) << name;
        return widget;
    }

    // Two images and both prompts: ready to start.
    void fillIn() {
        pane->addImageFiles({writeImage(QStringLiteral("dog1.png"), Qt::red, {64, 48}, "PNG"),
                             writeImage(QStringLiteral("dog2.jpg"), Qt::blue, {2048, 1024}, "JPEG")});
        child<QLineEdit>("instance_prompt")->setText(QStringLiteral("a photo of zwx dog"));
        child<QLineEdit>("class_prompt")->setText(QStringLiteral("a photo of a dog"));
        child<QSpinBox>("train_seed")->setValue(42);
    }

    QList<RecordedRequest> requestsTo(const QString& path) const {
        QList<RecordedRequest> out;
        for (const auto& r : server.requests()) {
            if (r.path == path) out.append(r);
        }
        return out;
    }
};

TEST_F(TrainPaneFixture, OffersTheCheckpointsAsBaseModelsWithTheDefaultSelected) {
    auto* base = child<QComboBox>("base_model");
    ASSERT_EQ(base->count(), 2);  // the LoRA is no base model
    EXPECT_EQ(base->currentData().toString(), QStringLiteral("easel-shapes-64"));
}

TEST_F(TrainPaneFixture, StartSendsDreamBoothJSONWithTheImagesAsDataURLs) {
    fillIn();
    EXPECT_EQ(child<QSpinBox>("train_steps")->value(), 2 * TrainPane::kStepsPerImage);
    child<QPushButton>("start_training")->click();
    ASSERT_TRUE(waitFor([&] { return !requestsTo(QStringLiteral("/api/v3/fine_tune")).isEmpty(); }));
    const auto body = requestsTo(QStringLiteral("/api/v3/fine_tune")).front().json();
    EXPECT_EQ(body.value(QStringLiteral("key")).toString(), routes.apiKey);
    EXPECT_EQ(body.value(QStringLiteral("instance_prompt")).toString(), QStringLiteral("a photo of zwx dog"));
    EXPECT_EQ(body.value(QStringLiteral("class_prompt")).toString(), QStringLiteral("a photo of a dog"));
    EXPECT_EQ(body.value(QStringLiteral("base_model_id")).toString(), QStringLiteral("easel-shapes-64"));
    EXPECT_EQ(body.value(QStringLiteral("seed")).toInteger(), 42);
    EXPECT_EQ(body.value(QStringLiteral("max_train_steps")).toInt(), 4);
    EXPECT_FALSE(body.contains(QStringLiteral("lora_type")));
    const auto images = body.value(QStringLiteral("images")).toArray();
    ASSERT_EQ(images.size(), 2);
    // The PNG goes as it is; the big photo as JPEG, scaled to the longest side the trainer needs.
    EXPECT_TRUE(images[0].toString().startsWith(QStringLiteral("data:image/png;base64,")));
    EXPECT_EQ(decodeDataURL(images[0].toString()).size(), QSize(64, 48));
    EXPECT_EQ(decodeDataURL(images[0].toString()).pixelColor(3, 3), QColor(Qt::red));
    EXPECT_TRUE(images[1].toString().startsWith(QStringLiteral("data:image/jpeg;base64,")));
    EXPECT_EQ(decodeDataURL(images[1].toString()).size(), QSize(1024, 512));
    // Settings are locked while it runs; only Cancel is live.
    EXPECT_FALSE(child<QPushButton>("start_training")->isEnabled());
    EXPECT_TRUE(child<QPushButton>("cancel_training")->isEnabled());
    EXPECT_FALSE(child<QLineEdit>("instance_prompt")->isEnabled());
    EXPECT_FALSE(child<QPushButton>("add_images")->isEnabled());
    EXPECT_TRUE(child<QListWidget>("training_images")->isEnabled());  // thumbnails keep their colours
}

TEST_F(TrainPaneFixture, LoRAMethodPostsToTheLoRARouteWithItsFields) {
    fillIn();
    auto* method = child<QComboBox>("train_method");
    method->setCurrentIndex(method->findData(static_cast<int>(TrainingMethod::LoRA)));
    child<QLineEdit>("train_negative_prompt")->setText(QStringLiteral("blurry"));
    child<QSpinBox>("train_steps")->setValue(300);
    pane->addImageFiles({writeImage(QStringLiteral("dog3.png"), Qt::green, {32, 32}, "PNG")});
    EXPECT_EQ(child<QSpinBox>("train_steps")->value(), 300);  // chosen by hand: no longer follows the images
    pane->startTraining();
    ASSERT_TRUE(waitFor([&] { return !requestsTo(QStringLiteral("/api/v3/lora_fine_tune")).isEmpty(); }));
    EXPECT_TRUE(requestsTo(QStringLiteral("/api/v3/fine_tune")).isEmpty());
    const auto body = requestsTo(QStringLiteral("/api/v3/lora_fine_tune")).front().json();
    EXPECT_EQ(body.value(QStringLiteral("lora_type")).toString(), QStringLiteral("lora"));
    EXPECT_EQ(body.value(QStringLiteral("negative_prompt")).toString(), QStringLiteral("blurry"));
    EXPECT_EQ(body.value(QStringLiteral("max_train_steps")).toInt(), 300);
    EXPECT_EQ(body.value(QStringLiteral("images")).toArray().size(), 3);
}

TEST_F(TrainPaneFixture, StatusAnswersShowStageStepTimeLeftAndTheLossCurve) {
    routes.statusScript = {FakeTrainingRoutes::status(QStringLiteral("deploying_gpu")),
                           FakeTrainingRoutes::status(QStringLiteral("training_started"), 60, 200, 95,
                                                      FakeTrainingRoutes::falling(60, 0.45, 0.004))};
    fillIn();
    pane->startTraining();
    auto* progress = child<QProgressBar>("training_progress");
    ASSERT_TRUE(waitFor([&] { return progress->value() == 60; }));
    EXPECT_EQ(progress->maximum(), 200);
    EXPECT_EQ(child<QLabel>("training_stage")->text(), QStringLiteral("Training"));
    EXPECT_TRUE(child<QLabel>("training_detail")->text().contains(QStringLiteral("about 1 min 35 s left")))
        << child<QLabel>("training_detail")->text().toStdString();
    const auto points = pane->lossPlot()->points();
    ASSERT_EQ(points.size(), 60);
    EXPECT_EQ(points.front(), QPointF(1, 0.43));
    EXPECT_LT(pane->lossPlot()->smoothed().back().y(), points.front().y());
    ASSERT_TRUE(waitFor([&] { return routes.statusPolls >= 3; }));  // it keeps polling
    saveScreenshot(*pane, QStringLiteral("train_pane"));
}

TEST_F(TrainPaneFixture, CancelPostsCancelTrainingAndUnlocksTheForm) {
    routes.statusScript = {FakeTrainingRoutes::status(QStringLiteral("training_started"), 5, 100, 60)};
    fillIn();
    pane->startTraining();
    ASSERT_TRUE(waitFor([&] { return child<QProgressBar>("training_progress")->value() == 5; }));
    QSignalSpy cancelled(pane->job(), &TrainingJob::cancelled);
    child<QPushButton>("cancel_training")->click();
    ASSERT_TRUE(waitFor([&] { return cancelled.count() == 1; }));
    EXPECT_EQ(requestsTo(QStringLiteral("/api/v3/cancel_training/7")).size(), 1);
    EXPECT_EQ(routes.cancelled, QList<qint64>{7});
    EXPECT_EQ(child<QLabel>("training_stage")->text(), QStringLiteral("Cancelled"));
    EXPECT_TRUE(child<QPushButton>("start_training")->isEnabled());
    EXPECT_FALSE(child<QPushButton>("cancel_training")->isEnabled());
    const int polls = routes.statusPolls;
    QTest::qWait(100);
    EXPECT_EQ(routes.statusPolls, polls);  // polling stopped
    EXPECT_TRUE(dialogs.errors.isEmpty());
}

TEST_F(TrainPaneFixture, ARunningTrainingIsCancelledOnceTheServerSaysSo) {
    routes.cancelStage = QStringLiteral("training_started");
    routes.statusScript = {FakeTrainingRoutes::status(QStringLiteral("training_started"), 5, 100, 60)};
    fillIn();
    pane->startTraining();
    ASSERT_TRUE(waitFor([&] { return child<QProgressBar>("training_progress")->value() == 5; }));
    QSignalSpy cancelled(pane->job(), &TrainingJob::cancelled);
    pane->cancelTraining();
    ASSERT_TRUE(waitFor([&] { return !requestsTo(QStringLiteral("/api/v3/cancel_training/7")).isEmpty(); }));
    const int polls = routes.statusPolls;
    ASSERT_TRUE(waitFor([&] { return routes.statusPolls > polls + 1; }));  // still followed
    EXPECT_TRUE(pane->job()->active());
    EXPECT_EQ(child<QLabel>("training_stage")->text(), QStringLiteral("Training · cancelling…"));
    EXPECT_FALSE(child<QPushButton>("cancel_training")->isEnabled());
    routes.statusScript = {FakeTrainingRoutes::status(QStringLiteral("cancelled"))};
    routes.statusPolls = 0;
    ASSERT_TRUE(waitFor([&] { return cancelled.count() == 1; }));
    EXPECT_EQ(child<QLabel>("training_stage")->text(), QStringLiteral("Cancelled"));
    EXPECT_TRUE(child<QPushButton>("start_training")->isEnabled());
}

TEST_F(TrainPaneFixture, ModelReadyFillsTheBarSaysSoAndEmitsTheModel) {
    routes.statusScript = {FakeTrainingRoutes::status(QStringLiteral("training_started"), 4, 4, 0),
                           FakeTrainingRoutes::status(QStringLiteral("trained_model_compressing"), 4, 4),
                           FakeTrainingRoutes::status(QStringLiteral("model_ready"), 4, 4)};
    fillIn();
    QSignalSpy ready(pane.get(), &TrainPane::modelReady);
    pane->startTraining();
    ASSERT_TRUE(waitFor([&] { return ready.count() == 1; }));
    EXPECT_EQ(ready.front().at(0).value<TrainingMethod>(), TrainingMethod::DreamBooth);
    EXPECT_EQ(ready.front().at(1).toString(), QStringLiteral("zwx-dog"));
    ASSERT_EQ(dialogs.messages.size(), 1);
    EXPECT_TRUE(dialogs.messages.front().contains(QStringLiteral("zwx-dog")));
    EXPECT_EQ(child<QLabel>("training_stage")->text(), QStringLiteral("Model ready"));
    EXPECT_EQ(child<QProgressBar>("training_progress")->value(), 4);
    EXPECT_TRUE(child<QPushButton>("start_training")->isEnabled());
}

TEST_F(TrainPaneFixture, AnErrorAnswerToTheStartShowsTheServersMessage) {
    routes.startAnswer =
        CannedResponse::json(400, {{QStringLiteral("status"), QStringLiteral("error")},
                                   {QStringLiteral("messege"), QStringLiteral("base model not found")}});
    fillIn();
    pane->startTraining();
    ASSERT_TRUE(waitFor([&] { return dialogs.errors.size() == 1; }));
    EXPECT_EQ(dialogs.errors.front().kind, ApiErrorKind::BadRequest);
    EXPECT_EQ(dialogs.errors.front().message, QStringLiteral("base model not found"));
    EXPECT_TRUE(child<QPushButton>("start_training")->isEnabled());
    EXPECT_TRUE(requestsTo(QStringLiteral("/api/v3/fine_tune_status/7")).isEmpty());
}

TEST_F(TrainPaneFixture, AFailedTrainingShowsTheReason) {
    routes.statusScript = {
        FakeTrainingRoutes::status(QStringLiteral("training_started"), 2, 10, 8),
        CannedResponse::json(200, {{QStringLiteral("status"), QStringLiteral("failed")},
                                   {QStringLiteral("messege"), QStringLiteral("failed")},
                                   {QStringLiteral("message"), QStringLiteral("CUDA out of memory")}})};
    fillIn();
    pane->startTraining();
    ASSERT_TRUE(waitFor([&] { return dialogs.errors.size() == 1; }));
    EXPECT_TRUE(dialogs.errors.front().message.contains(QStringLiteral("CUDA out of memory")));
    EXPECT_EQ(child<QLabel>("training_stage")->text(), QStringLiteral("Failed"));
    EXPECT_TRUE(child<QLabel>("training_detail")->text().contains(QStringLiteral("CUDA out of memory")));
    EXPECT_TRUE(child<QPushButton>("start_training")->isEnabled());
}

TEST_F(TrainPaneFixture, StartRefusesWithoutImagesOrPromptsAndSendsNothing) {
    pane->startTraining();
    ASSERT_EQ(dialogs.messages.size(), 1);
    EXPECT_TRUE(dialogs.messages.back().contains(QStringLiteral("images")));
    pane->addImageFiles({writeImage(QStringLiteral("a.png"), Qt::red, {16, 16}, "PNG")});
    pane->startTraining();
    ASSERT_EQ(dialogs.messages.size(), 2);
    EXPECT_TRUE(dialogs.messages.back().contains(QStringLiteral("instance prompt")));
    child<QLineEdit>("instance_prompt")->setText(QStringLiteral("a photo of zwx dog"));
    pane->startTraining();
    ASSERT_EQ(dialogs.messages.size(), 3);
    EXPECT_TRUE(dialogs.messages.back().contains(QStringLiteral("class prompt")));
    QTest::qWait(50);
    EXPECT_TRUE(server.requests().isEmpty());
}

TEST_F(TrainPaneFixture, UnreadableFilesAreReportedAndRemoveTakesImagesOut) {
    QFile bogus(dir.filePath(QStringLiteral("notes.png")));
    ASSERT_TRUE(bogus.open(QIODevice::WriteOnly));
    bogus.write("not an image");
    bogus.close();
    const int added =
        pane->addImageFiles({writeImage(QStringLiteral("a.png"), Qt::red, {16, 16}, "PNG"), bogus.fileName(),
                             writeImage(QStringLiteral("b.png"), Qt::blue, {16, 16}, "PNG")});
    EXPECT_EQ(added, 2);
    ASSERT_EQ(dialogs.messages.size(), 1);
    EXPECT_TRUE(dialogs.messages.front().contains(QStringLiteral("notes.png")));
    auto* list = child<QListWidget>("training_images");
    list->item(0)->setSelected(true);
    child<QPushButton>("remove_images")->click();
    ASSERT_EQ(pane->imageDataURLs().size(), 1);
    EXPECT_EQ(decodeDataURL(pane->imageDataURLs().front()).pixelColor(0, 0), QColor(Qt::blue));
    EXPECT_EQ(child<QSpinBox>("train_steps")->value(), TrainPane::kStepsPerImage);
    EXPECT_EQ(child<QLabel>("image_count")->text(), QStringLiteral("1 image"));
}

TEST_F(TrainPaneFixture, ResumesTheNewestTrainingThatStillRuns) {
    routes.listed = {
        QJsonObject{{QStringLiteral("training_id"), 3}, {QStringLiteral("messege"), QStringLiteral("model_ready")}},
        QJsonObject{{QStringLiteral("training_id"), 7},
                    {QStringLiteral("messege"), QStringLiteral("training_started")},
                    {QStringLiteral("lora_type"), QStringLiteral("lora")}},
        QJsonObject{{QStringLiteral("training_id"), 9}, {QStringLiteral("status"), QStringLiteral("cancelled")}}};
    routes.statusScript = {FakeTrainingRoutes::status(QStringLiteral("training_started"), 30, 100, 20)};
    pane->resumeRunning();
    ASSERT_TRUE(waitFor([&] { return child<QProgressBar>("training_progress")->value() == 30; }));
    EXPECT_TRUE(pane->job()->active());
    EXPECT_EQ(pane->job()->method(), TrainingMethod::LoRA);
    EXPECT_EQ(pane->job()->status().trainingId, 7);
    EXPECT_FALSE(child<QPushButton>("start_training")->isEnabled());
}

}  // namespace
}  // namespace easel::ui
