#include "ui/training_types.h"

#include <gtest/gtest.h>

#include <QJsonArray>
#include <QJsonDocument>

#include "ui/loss_plot.h"

namespace easel::ui {
namespace {

QJsonObject json(const char* text) { return QJsonDocument::fromJson(QByteArray(text)).object(); }

TEST(TrainingStatusTest, ReadsEveryFieldOfAStatusAnswer) {
    const auto s = TrainingStatus::fromJSON(
        json(R"({"status":"success","messege":"training_started","data":"Step 40/200, loss 0.12, ETA 31 s",
                 "step":40,"total_steps":200,"eta_seconds":31.5,"loss":[[2,0.3],[1,0.4]],"model_id":"zwx-dog",
                 "training_id":7})"));
    EXPECT_EQ(s.trainingId, 7);
    EXPECT_EQ(s.stage, QStringLiteral("training_started"));
    EXPECT_EQ(s.step, 40);
    EXPECT_EQ(s.totalSteps, 200);
    EXPECT_DOUBLE_EQ(s.etaSeconds, 31.5);
    EXPECT_EQ(s.modelId, QStringLiteral("zwx-dog"));
    ASSERT_EQ(s.loss.size(), 2);
    EXPECT_EQ(s.loss.front(), QPointF(1, 0.4));  // sorted by step
    EXPECT_FALSE(s.finished());
}

TEST(TrainingStatusTest, ReadsTheEaselServersStageFieldsAndClearsANullETA) {
    TrainingStatus before;
    before.etaSeconds = 40;
    const auto drawing =
        TrainingStatus::fromJSON(json(R"({"status":"success","messege":"training_started","message":"training_started",
                 "training_status":"training_started","trainer_stage":"class_images","stage_step":3,
                 "stage_total":50,"step":0,"total_steps":200,"eta_seconds":null,
                 "data":"Drawing class images 3/50"})"),
                                 before);
    EXPECT_EQ(drawing.trainerStage, QStringLiteral("class_images"));
    EXPECT_EQ(drawing.stageStep, 3);
    EXPECT_EQ(drawing.stageTotal, 50);
    EXPECT_EQ(drawing.step, 0);
    EXPECT_LT(drawing.etaSeconds, 0);
    EXPECT_EQ(stageText(drawing), QStringLiteral("Drawing class images"));
    // A cancel answer: its "messege" is a sentence, the stage is in training_status.
    const auto cancelling = TrainingStatus::fromJSON(json(
        R"({"status":"success","training_status":"training_started","messege":"cancellation requested; stops soon"})"));
    EXPECT_EQ(cancelling.stage, QStringLiteral("training_started"));
    const auto failed = TrainingStatus::fromJSON(
        json(R"({"status":"success","training_status":"failed","messege":"failed","message":"","error":"no GPU"})"));
    EXPECT_TRUE(failed.failed());
    EXPECT_EQ(failed.reason, QStringLiteral("no GPU"));
}

TEST(TrainingStatusTest, FallsBackToTheDataLineAndKeepsWhatAnAnswerLeavesOut) {
    TrainingStatus before;
    before.trainingId = 3;
    before.modelId = QStringLiteral("m");
    before.loss = {QPointF(1, 0.5)};
    const auto s = TrainingStatus::fromJSON(
        json(R"({"status":"success","messege":"training_started","data":"Step 12/50, loss 0.2, ETA 9 s"})"), before);
    EXPECT_EQ(s.step, 12);
    EXPECT_EQ(s.totalSteps, 50);
    EXPECT_DOUBLE_EQ(s.etaSeconds, 9);
    EXPECT_EQ(s.trainingId, 3);
    EXPECT_EQ(s.modelId, QStringLiteral("m"));
    EXPECT_EQ(s.loss.size(), 1);
    // Nothing but a stage: no crash, nothing invented.
    const auto bare = TrainingStatus::fromJSON(json(R"({"messege":"deploying_gpu"})"));
    EXPECT_EQ(bare.stage, QStringLiteral("deploying_gpu"));
    EXPECT_EQ(bare.totalSteps, 0);
    EXPECT_LT(bare.etaSeconds, 0);
    EXPECT_TRUE(bare.loss.isEmpty());
}

TEST(TrainingStatusTest, AcceptsOtherLossShapesAndSkipsJunk) {
    const auto s = TrainingStatus::fromJSON(
        json(R"({"messege":"training_started","loss":[{"step":3,"loss":0.2},[4,"0.1"],0.5,[5],"x",[6,null]]})"));
    ASSERT_EQ(s.loss.size(), 3);
    EXPECT_EQ(s.loss[0], QPointF(3, 0.2));
    EXPECT_EQ(s.loss[1], QPointF(3, 0.5));  // a bare loss: its index (2) + 1 is the step
    EXPECT_EQ(s.loss[2], QPointF(4, 0.1));
}

TEST(TrainingStatusTest, FailureReasonComesFromMessageOrMessege) {
    const auto a =
        TrainingStatus::fromJSON(json(R"({"status":"failed","messege":"failed","message":"out of memory"})"));
    EXPECT_TRUE(a.failed());
    EXPECT_EQ(a.reason, QStringLiteral("out of memory"));
    const auto b = TrainingStatus::fromJSON(json(R"({"status":"error","messege":"dataset is empty"})"));
    EXPECT_TRUE(b.failed());
    EXPECT_EQ(b.reason, QStringLiteral("dataset is empty"));
    const auto c = TrainingStatus::fromJSON(json(R"({"status":"success","messege":"cancelled"})"));
    EXPECT_TRUE(c.cancelled());
    EXPECT_TRUE(TrainingStatus::fromJSON(json(R"({"status":"success","messege":"model_ready"})")).ready());
}

TEST(TrainingListTest, ReadsIdsStagesAndMethods) {
    const auto list = trainingsFromJSON(json(R"({"status":"success","data":[
        {"training_id":4,"messege":"model_ready","model_id":"a"},
        {"id":"5","status":"training_started","lora_type":"lora"},
        {"messege":"no id: skipped"}]})"));
    ASSERT_EQ(list.size(), 2);
    EXPECT_TRUE(list[0].status.ready());
    EXPECT_EQ(list[0].method, TrainingMethod::DreamBooth);
    EXPECT_EQ(list[1].status.trainingId, 5);
    EXPECT_EQ(list[1].status.stage, QStringLiteral("training_started"));
    EXPECT_EQ(list[1].method, TrainingMethod::LoRA);
    EXPECT_TRUE(trainingsFromJSON(json(R"({"status":"success"})")).isEmpty());
}

TEST(TrainingBodyTest, DreamBoothAndLoRABodies) {
    TrainingRequest r;
    r.baseModelId = QStringLiteral("sd15");
    r.instancePrompt = QStringLiteral("a photo of zwx dog");
    r.classPrompt = QStringLiteral("a photo of a dog");
    r.negativePrompt = QStringLiteral("blurry");
    r.images = {QStringLiteral("data:image/png;base64,AAAA")};
    r.seed = 5;
    r.maxTrainSteps = 10;
    const auto dreambooth = trainingBody(r, QStringLiteral("k"));
    EXPECT_EQ(trainingPath(r.method), QStringLiteral("/api/v3/fine_tune"));
    EXPECT_EQ(dreambooth.value(QStringLiteral("key")).toString(), QStringLiteral("k"));
    EXPECT_FALSE(dreambooth.contains(QStringLiteral("negative_prompt")));
    EXPECT_FALSE(dreambooth.contains(QStringLiteral("track_id")));
    r.method = TrainingMethod::LoRA;
    r.trackId = QStringLiteral("t1");
    const auto lora = trainingBody(r, QStringLiteral("k"));
    EXPECT_EQ(trainingPath(r.method), QStringLiteral("/api/v3/lora_fine_tune"));
    EXPECT_EQ(lora.value(QStringLiteral("lora_type")).toString(), QStringLiteral("lora"));
    EXPECT_EQ(lora.value(QStringLiteral("negative_prompt")).toString(), QStringLiteral("blurry"));
    EXPECT_EQ(lora.value(QStringLiteral("track_id")).toString(), QStringLiteral("t1"));
    EXPECT_EQ(lora.value(QStringLiteral("images")).toArray().size(), 1);
}

TEST(TrainingTextTest, StagesAndTimeLeftReadAsWords) {
    EXPECT_EQ(stageText(QStringLiteral("deploying_gpu")), QStringLiteral("Waiting for the GPU…"));
    EXPECT_EQ(stageText(QStringLiteral("something_new")), QStringLiteral("something_new"));
    EXPECT_EQ(etaText(-1), QString());
    EXPECT_EQ(etaText(4.2), QStringLiteral("about 5 s left"));
    EXPECT_EQ(etaText(125), QStringLiteral("about 2 min 5 s left"));
    EXPECT_EQ(etaText(7260), QStringLiteral("about 2 h 1 min left"));
}

TEST(LossPlotTest, SmoothsTheCurveAndPaintsAnyNumberOfPoints) {
    LossPlot plot;
    plot.resize(300, 140);
    EXPECT_FALSE(plot.grab().isNull());  // empty: the placeholder text
    plot.setPoints({QPointF(1, 1.0)}, 10);
    EXPECT_FALSE(plot.grab().isNull());
    plot.setPoints({QPointF(1, 1.0), QPointF(2, 0.0), QPointF(3, 0.0)}, 0);
    const auto mean = plot.smoothed();
    ASSERT_EQ(mean.size(), 3);
    EXPECT_DOUBLE_EQ(mean[0].y(), 1.0);
    EXPECT_DOUBLE_EQ(mean[1].y(), LossPlot::kSmoothing);
    EXPECT_DOUBLE_EQ(mean[2].y(), LossPlot::kSmoothing * LossPlot::kSmoothing);
    // A flat curve has some height too.
    plot.setPoints({QPointF(1, 0.2), QPointF(2, 0.2)}, 2);
    EXPECT_FALSE(plot.grab().isNull());
}

}  // namespace
}  // namespace easel::ui
