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

TEST(InfotextTest, LoraTagsBecomePickerRowsAndLeaveThePrompt) {
    const auto t =
        takeLoraTags(QStringLiteral("a cat, <lora:pixel-art:0.7>, watercolor <lora:ink-v2:-1.25> <lora:plain>"));
    EXPECT_EQ(t.prompt, QStringLiteral("a cat, watercolor"));
    EXPECT_EQ(t.loras, (QList<LoraChoice>{{QStringLiteral("pixel-art"), 0.7},
                                          {QStringLiteral("ink-v2"), -1.25},
                                          {QStringLiteral("plain"), 1.0}}));
    EXPECT_TRUE(t.errors.isEmpty());
    // Two multipliers (text encoder, UNet) have no row of their own: the tag stays for the server.
    const auto split = takeLoraTags(QStringLiteral("<lora:a:0.5:0.8> dog <lora:b:0.3>"));
    EXPECT_EQ(split.prompt, QStringLiteral("dog <lora:a:0.5:0.8>"));
    EXPECT_EQ(split.loras, (QList<LoraChoice>{{QStringLiteral("b"), 0.3}}));
    // A malformed tag: the prompt as it was, and the fault named.
    const auto bad = takeLoraTags(QStringLiteral("dog <lora:a:lots> <lora:b:0.3>"));
    EXPECT_EQ(bad.prompt, QStringLiteral("dog <lora:a:lots> <lora:b:0.3>"));
    EXPECT_TRUE(bad.loras.isEmpty());
    ASSERT_EQ(bad.errors.size(), 1);
    EXPECT_TRUE(bad.errors[0].contains(QStringLiteral("'lots' is not a number")));
    // Other angle brackets are words.
    EXPECT_EQ(takeLoraTags(QStringLiteral("a <b> c")).prompt, QStringLiteral("a <b> c"));
}

TEST(InfotextTest, EaselInfotextWithLorasRecallsThem) {
    // As the engine writes it: the tags after the prompt, their files' hashes in "Lora hashes".
    const auto text = QStringLiteral(
        "a red star <lora:pixel-art:0.7> <lora:ink:0.35>\nNegative prompt: blur\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: sd15, "
        "Lora hashes: \"pixel-art: abcdef123456, ink: 0123456789ab\"");
    const auto p = paramsFromInfotext(text);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->prompt, QStringLiteral("a red star"));
    EXPECT_EQ(p->loras, (QList<LoraChoice>{{QStringLiteral("pixel-art"), 0.7}, {QStringLiteral("ink"), 0.35}}));
    // An image without LoRAs clears the base's.
    GenerationParams base;
    base.loras = {{QStringLiteral("old"), 1.0}};
    EXPECT_TRUE(paramsFromInfotext(QStringLiteral("x\nSteps: 20"), base)->loras.isEmpty());
    // What the app writes for a saved image reads back the same.
    const auto written = infotextFor(*p, 5, QStringLiteral("sd15"));
    EXPECT_TRUE(written.startsWith(QStringLiteral("a red star <lora:pixel-art:0.7> <lora:ink:0.35>\n")));
    const auto again = paramsFromInfotext(written);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->prompt, p->prompt);
    EXPECT_EQ(again->loras, p->loras);
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
