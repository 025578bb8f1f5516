#include "ui/infotext.h"

#include <gtest/gtest.h>

#include <QBuffer>

namespace easel::ui {
namespace {

TEST(InfotextTest, ParsesA1111Parameters) {
    const auto text = QStringLiteral(
        "a red star,\nat the top left\nNegative prompt: blurry, text\nugly\n"
        "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5.5, Seed: 1234567890123, Size: 512x768, "
        "Model hash: abc, Model: easel-shapes-64, Denoising strength: 0.45, Lora hashes: \"a: 1, b: 2\"");
    const auto info = Infotext::parse(text);
    EXPECT_EQ(info.prompt, QStringLiteral("a red star,\nat the top left"));
    EXPECT_EQ(info.negativePrompt, QStringLiteral("blurry, text\nugly"));
    EXPECT_EQ(info.fields.value(QStringLiteral("Lora hashes")), QStringLiteral("a: 1, b: 2"));
    const auto p = paramsFromInfotext(text);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->steps, 30);
    EXPECT_EQ(p->scheduler, QStringLiteral("DPMSolverMultistepScheduler"));
    EXPECT_TRUE(p->karrasSigmas);
    EXPECT_DOUBLE_EQ(p->guidanceScale, 5.5);
    EXPECT_EQ(p->seed, 1234567890123);
    EXPECT_EQ(p->width, 512);
    EXPECT_EQ(p->height, 768);
    EXPECT_EQ(p->modelId, QStringLiteral("easel-shapes-64"));
    EXPECT_DOUBLE_EQ(p->strength, 0.45);
}

TEST(InfotextTest, SamplerNamesMapBothWays) {
    EXPECT_EQ(schedulerFromSampler(QStringLiteral("Euler a"))->first,
              QStringLiteral("EulerAncestralDiscreteScheduler"));
    EXPECT_EQ(schedulerFromSampler(QStringLiteral("DDIM"))->first, QStringLiteral("DDIMScheduler"));
    EXPECT_EQ(schedulerFromSampler(QStringLiteral("UniPC"))->first, QStringLiteral("UniPCMultistepScheduler"));
    EXPECT_EQ(schedulerFromSampler(QStringLiteral("PLMS"))->first, QStringLiteral("PNDMScheduler"));
    // A1111's "DPM++ SDE" is another sampler than anything Easel runs.
    EXPECT_FALSE(schedulerFromSampler(QStringLiteral("DPM++ SDE")));
    EXPECT_EQ(samplerName(QStringLiteral("DPMSolverMultistepScheduler"), true), QStringLiteral("DPM++ 2M Karras"));
    // DPM++ 2M SDE shares its class with DPM++ 2M: the app sends the A1111 name and the Karras flag.
    const auto sde = schedulerFromSampler(QStringLiteral("DPM++ 2M SDE Karras"));
    ASSERT_TRUE(sde);
    EXPECT_EQ(sde->first, QStringLiteral("DPM++ 2M SDE"));
    EXPECT_TRUE(sde->second);
    EXPECT_EQ(samplerName(sde->first, sde->second), QStringLiteral("DPM++ 2M SDE Karras"));
    EXPECT_TRUE(schedulerNames().contains(sde->first));
    // Newer A1111 spells the schedule separately.
    const auto p = paramsFromInfotext(QStringLiteral("x\nSteps: 5, Sampler: DPM++ 2M, Schedule type: Karras"));
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->karrasSigmas);
}

TEST(InfotextTest, UnknownSamplerKeepsBaseAndNoStepsIsNotParameters) {
    GenerationParams base;
    base.scheduler = QStringLiteral("DDIMScheduler");
    const auto p = paramsFromInfotext(QStringLiteral("cat\nSteps: 8, Sampler: DPM++ SDE"), base);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->scheduler, QStringLiteral("DDIMScheduler"));
    EXPECT_EQ(p->negativePrompt, QString());
    EXPECT_FALSE(paramsFromInfotext(QStringLiteral("Created with some editor")));
}

// Every sampler the app offers, with and without Karras sigmas, reads back from the text it writes.
TEST(InfotextTest, EverySchedulerOfTheListRoundTrips) {
    for (const auto& scheduler : schedulerNames()) {
        if (scheduler.isEmpty()) continue;
        for (const bool karras : {false, true}) {
            GenerationParams p;
            p.scheduler = scheduler;
            p.karrasSigmas = karras;
            const auto back = paramsFromInfotext(infotextFor(p, 1, QString()), {});
            ASSERT_TRUE(back);
            EXPECT_EQ(back->scheduler, scheduler);
            EXPECT_EQ(back->karrasSigmas, karras) << scheduler.toStdString();
        }
    }
    GenerationParams uniPC;
    uniPC.scheduler = QStringLiteral("UniPCMultistepScheduler");
    uniPC.karrasSigmas = true;
    const auto text = infotextFor(uniPC, 1, QString());
    EXPECT_TRUE(text.contains(QStringLiteral("Sampler: UniPC,"))) << text.toStdString();
    EXPECT_TRUE(text.contains(QStringLiteral("Schedule type: Karras"))) << text.toStdString();
}

TEST(InfotextTest, FormatRoundTripsThroughAPNGChunk) {
    GenerationParams p;
    p.prompt = QStringLiteral("a blue circle, centred");
    p.negativePrompt = QStringLiteral("noise");
    p.steps = 12;
    p.guidanceScale = 4;
    p.scheduler = QStringLiteral("EulerAncestralDiscreteScheduler");
    const QString text = infotextFor(p, 99, QStringLiteral("easel-shapes-64"));
    EXPECT_EQ(text, QStringLiteral("a blue circle, centred\nNegative prompt: noise\nSteps: 12, Sampler: Euler a, CFG "
                                   "scale: 4, Seed: 99, Size: 64x64, Model: easel-shapes-64"));
    QByteArray png;
    QBuffer buffer(&png);
    buffer.open(QIODevice::WriteOnly);
    // QImageWriter::setText would flatten the newlines; the image's own text keeps them.
    QImage image(4, 4, QImage::Format_RGB32);
    image.fill(Qt::white);
    image.setText(QStringLiteral("parameters"), text);
    ASSERT_TRUE(image.save(&buffer, "PNG"));
    const QImage read = QImage::fromData(png, "PNG");
    EXPECT_EQ(read.text(QStringLiteral("parameters")), text) << read.textKeys().join(QLatin1Char(',')).toStdString();
    const auto back = paramsFromInfotext(read.text(QStringLiteral("parameters")), {});
    ASSERT_TRUE(back);
    p.seed = 99;
    p.modelId = QStringLiteral("easel-shapes-64");
    EXPECT_EQ(*back, p);
}

}  // namespace
}  // namespace easel::ui
