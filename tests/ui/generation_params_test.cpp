#include "ui/generation_params.h"

#include <gtest/gtest.h>

#include <QCheckBox>
#include <QComboBox>
#include <QGroupBox>
#include <QJsonArray>
#include <QSpinBox>
#include <QTemporaryDir>

#include "ui/parameter_form.h"
#include "ui_test_support.h"

namespace easel::ui {
namespace {

// The built-in model (SD 1.x family, the default) and an SDXL one, as the server lists them.
QList<ModelInfo> builtinAndSDXL() {
    ModelInfo builtin{QStringLiteral("easel-shapes-64"), QStringLiteral("Shapes"), QString(), true, 64, 64, 20};
    builtin.family = QStringLiteral("sd1");
    ModelInfo xl{QStringLiteral("sdxl-base"), QStringLiteral("SDXL"), QString(), false, 1024, 1024, 30};
    xl.family = QStringLiteral("sdxl");
    return {builtin, xl};
}

TEST(GenerationParamsTest, Text2ImgBodyHasTheContractKeys) {
    GenerationParams p;
    p.prompt = QStringLiteral("a red square");
    p.negativePrompt = QStringLiteral("blur");
    p.width = 512;
    p.height = 768;
    p.samples = 2;
    p.steps = 25;
    p.guidanceScale = 6.5;
    p.scheduler = QStringLiteral("EulerDiscreteScheduler");
    p.karrasSigmas = true;
    const auto body = requestBody(GenerationKind::Text2Img, p, QStringLiteral("k"));
    EXPECT_EQ(body.value(QStringLiteral("key")).toString(), QStringLiteral("k"));
    EXPECT_EQ(body.value(QStringLiteral("prompt")).toString(), p.prompt);
    EXPECT_EQ(body.value(QStringLiteral("negative_prompt")).toString(), p.negativePrompt);
    EXPECT_EQ(body.value(QStringLiteral("width")).toInt(), 512);
    EXPECT_EQ(body.value(QStringLiteral("height")).toInt(), 768);
    EXPECT_EQ(body.value(QStringLiteral("samples")).toInt(), 2);
    EXPECT_EQ(body.value(QStringLiteral("num_inference_steps")).toInt(), 25);
    EXPECT_DOUBLE_EQ(body.value(QStringLiteral("guidance_scale")).toDouble(), 6.5);
    EXPECT_TRUE(body.value(QStringLiteral("seed")).isNull());
    EXPECT_EQ(body.value(QStringLiteral("scheduler")).toString(), QStringLiteral("EulerDiscreteScheduler"));
    EXPECT_EQ(body.value(QStringLiteral("use_karras_sigmas")).toString(), QStringLiteral("yes"));
    EXPECT_TRUE(body.value(QStringLiteral("instant_response")).toBool());
    EXPECT_FALSE(body.contains(QStringLiteral("model_id")));  // empty: server default
    EXPECT_FALSE(body.contains(QStringLiteral("init_image")));
    EXPECT_FALSE(body.contains(QStringLiteral("strength")));
}

TEST(GenerationParamsTest, InpaintBodyCarriesImagesAsPNG) {
    GenerationParams p;
    p.modelId = QStringLiteral("easel-shapes-64");
    p.seed = 7;
    GenerationImages images;
    images.init = QImage(16, 8, QImage::Format_RGB32);
    images.init.fill(Qt::blue);
    images.mask = QImage(16, 8, QImage::Format_Grayscale8);
    images.mask.fill(255);
    const auto body = requestBody(GenerationKind::Inpaint, p, QStringLiteral("k"), images);
    EXPECT_EQ(body.value(QStringLiteral("model_id")).toString(), p.modelId);
    EXPECT_EQ(body.value(QStringLiteral("seed")).toInteger(), 7);
    // No scheduler chosen: the body names none, so the server uses the model's default.
    EXPECT_FALSE(body.contains(QStringLiteral("scheduler")));
    EXPECT_FALSE(body.contains(QStringLiteral("use_karras_sigmas")));
    EXPECT_DOUBLE_EQ(body.value(QStringLiteral("strength")).toDouble(), p.strength);
    const auto init =
        QImage::fromData(QByteArray::fromBase64(body.value(QStringLiteral("init_image")).toString().toLatin1()), "PNG");
    const auto mask =
        QImage::fromData(QByteArray::fromBase64(body.value(QStringLiteral("mask_image")).toString().toLatin1()), "PNG");
    EXPECT_EQ(init.size(), QSize(16, 8));
    EXPECT_EQ(mask.size(), QSize(16, 8));
    EXPECT_EQ(qGray(mask.pixel(3, 3)), 255);
    EXPECT_EQ(endpointPath(GenerationKind::Img2Img), QStringLiteral("/api/v6/images/img2img"));
}

TEST(GenerationParamsTest, MetaFillsParamsForUseTheseSettings) {
    const auto meta = QJsonObject{{QStringLiteral("prompt"), QStringLiteral("p")},
                                  {QStringLiteral("seed"), 123},
                                  {QStringLiteral("width"), 64},
                                  {QStringLiteral("num_inference_steps"), QStringLiteral("31")},
                                  {QStringLiteral("use_karras_sigmas"), QStringLiteral("yes")}};
    const auto p = paramsFromMeta(meta);
    EXPECT_EQ(p.prompt, QStringLiteral("p"));
    EXPECT_EQ(p.seed, 123);
    EXPECT_EQ(p.width, 64);
    EXPECT_EQ(p.steps, 31);
    EXPECT_TRUE(p.karrasSigmas);
}

TEST(GenerationParamsTest, LorasAndEmbeddingsGoInAsTheHostedApiSpellsThem) {
    GenerationParams p;
    p.prompt = QStringLiteral("a cat, emb-style");
    const auto plain = requestBody(GenerationKind::Text2Img, p, QStringLiteral("k"));
    EXPECT_FALSE(plain.contains(QStringLiteral("lora_model")));
    EXPECT_FALSE(plain.contains(QStringLiteral("lora_strength")));
    EXPECT_FALSE(plain.contains(QStringLiteral("embeddings_model")));
    p.loras = {{QStringLiteral("pixel-art"), 0.8}, {QStringLiteral("ink"), -0.25}, {QStringLiteral("x"), 1.0}};
    p.embeddings = {QStringLiteral("emb-style"), QStringLiteral("emb-two")};
    const auto body = requestBody(GenerationKind::Img2Img, p, QStringLiteral("k"));
    EXPECT_EQ(body.value(QStringLiteral("lora_model")).toString(), QStringLiteral("pixel-art,ink,x"));
    EXPECT_EQ(body.value(QStringLiteral("lora_strength")).toString(), QStringLiteral("0.8,-0.25,1"));
    EXPECT_EQ(body.value(QStringLiteral("embeddings_model")).toString(), QStringLiteral("emb-style,emb-two"));
    EXPECT_EQ(body.value(QStringLiteral("prompt")).toString(), p.prompt);
}

TEST(GenerationParamsTest, MetaLorasComeBackForUseTheseSettings) {
    // As the server's meta writes them: comma-separated strings, embeddings as an array.
    const auto p = paramsFromMeta(QJsonObject{{QStringLiteral("lora_model"), QStringLiteral("pixel-art,ink")},
                                              {QStringLiteral("lora_strength"), QStringLiteral("0.7,-1.5")},
                                              {QStringLiteral("embeddings_model"), QJsonArray{QStringLiteral("emb")}}});
    EXPECT_EQ(p.loras, (QList<LoraChoice>{{QStringLiteral("pixel-art"), 0.7}, {QStringLiteral("ink"), -1.5}}));
    EXPECT_EQ(p.embeddings, QStringList{QStringLiteral("emb")});
    // One number for all, and arrays.
    const auto q =
        paramsFromMeta(QJsonObject{{QStringLiteral("lora_model"), QJsonArray{QStringLiteral("a"), QStringLiteral("b")}},
                                   {QStringLiteral("lora_strength"), 0.5}});
    EXPECT_EQ(q.loras, (QList<LoraChoice>{{QStringLiteral("a"), 0.5}, {QStringLiteral("b"), 0.5}}));
    // No LoRAs in the meta: the base's stay.
    GenerationParams base;
    base.loras = {{QStringLiteral("kept"), 2.0}};
    EXPECT_EQ(paramsFromMeta(QJsonObject{}, base).loras, base.loras);
}

TEST(GenerationParamsTest, MetaWithTheModelsDefaultSamplerMapsToTheApiScheduler) {
    // The server reports a resolved model default in A1111 spelling.
    const auto p = paramsFromMeta(QJsonObject{{QStringLiteral("scheduler"), QStringLiteral("DPM++ 2M Karras")}});
    EXPECT_EQ(p.scheduler, QStringLiteral("DPMSolverMultistepScheduler"));
    EXPECT_TRUE(p.karrasSigmas);
    const auto q = paramsFromMeta(QJsonObject{{QStringLiteral("scheduler"), QStringLiteral("DDIMScheduler")}});
    EXPECT_EQ(q.scheduler, QStringLiteral("DDIMScheduler"));
    EXPECT_FALSE(q.karrasSigmas);
}

TEST(GenerationParamsTest, FormOffersTheModelDefaultFirstAndSendsNoSchedulerForIt) {
    ParameterForm form(false);
    auto* scheduler = form.findChild<QComboBox*>(QStringLiteral("scheduler"));
    auto* karras = form.findChild<QCheckBox*>();
    ASSERT_NE(scheduler, nullptr);
    ASSERT_NE(karras, nullptr);
    EXPECT_EQ(scheduler->currentIndex(), 0);
    EXPECT_EQ(scheduler->currentText(), QStringLiteral("Model default"));
    EXPECT_TRUE(form.params().scheduler.isEmpty());
    EXPECT_FALSE(karras->isEnabled());
    scheduler->setCurrentIndex(scheduler->findData(QStringLiteral("DDIMScheduler")));
    EXPECT_EQ(form.params().scheduler, QStringLiteral("DDIMScheduler"));
    EXPECT_TRUE(karras->isEnabled());
    GenerationParams p;
    p.scheduler = QStringLiteral("EulerAncestralDiscreteScheduler");
    form.setParams(p);
    EXPECT_EQ(scheduler->currentText(), QStringLiteral("EulerAncestralDiscreteScheduler"));
}

TEST(GenerationParamsTest, SettingsRoundTrip) {
    QTemporaryDir dir;
    QSettings settings(dir.filePath(QStringLiteral("s.ini")), QSettings::IniFormat);
    GenerationParams p;
    p.prompt = QStringLiteral("line 1\nline 2");
    p.seed = 5000000000;
    p.width = 768;
    p.loras = {{QStringLiteral("pixel-art"), 0.65}, {QStringLiteral("ink"), -2.0}};
    saveParams(settings, QStringLiteral("text2img"), p);
    EXPECT_EQ(loadParams(settings, QStringLiteral("text2img")), p);
    p.seed.reset();
    p.loras.clear();
    saveParams(settings, QStringLiteral("text2img"), p);
    EXPECT_EQ(loadParams(settings, QStringLiteral("text2img")), p);
    EXPECT_EQ(loadParams(settings, QStringLiteral("never-saved")), GenerationParams{});
}

TEST(ParameterFormTest, FormRoundTripsParamsAndBuildsTheBody) {
    ParameterForm form(true);
    GenerationParams p;
    p.scheduler = QStringLiteral("LCMScheduler");
    p.steps = 4;
    p.guidanceScale = 1.5;
    p.width = 512;
    p.height = 768;
    p.samples = 3;
    p.seed = 99;
    p.strength = 0.35;
    form.setParams(p);
    EXPECT_EQ(form.params(), p);
    const auto body = requestBody(GenerationKind::Img2Img, form.params(), QStringLiteral("k"));
    EXPECT_EQ(body.value(QStringLiteral("scheduler")).toString(), QStringLiteral("LCMScheduler"));
    EXPECT_EQ(body.value(QStringLiteral("seed")).toInteger(), 99);
    EXPECT_DOUBLE_EQ(body.value(QStringLiteral("strength")).toDouble(), 0.35);
    p.seed.reset();
    form.setParams(p);
    EXPECT_FALSE(form.params().seed.has_value());
}

TEST(ParameterFormTest, AFreshFormTakesTheDefaultModelsSettingsAndASetOneKeepsItsOwn) {
    ModelInfo builtin{QStringLiteral("easel-shapes-64"), QStringLiteral("Shapes"), QString(), true, 64, 64, 20};
    builtin.defaultGuidance = 1.0;
    ParameterForm fresh(false);
    fresh.setModels({builtin});
    EXPECT_EQ(fresh.params().guidanceScale, 1.0);
    EXPECT_EQ(fresh.params().width, 64);

    ParameterForm restored(false);
    GenerationParams p;
    p.guidanceScale = 4.0;
    restored.setParams(p);  // the last session's parameters
    restored.setModels({builtin});
    EXPECT_EQ(restored.params().guidanceScale, 4.0);
    // A later model list (Refresh) never overrides what the user set.
    fresh.setParams(p);
    fresh.setModels({builtin});
    EXPECT_EQ(fresh.params().guidanceScale, 4.0);
}

TEST(ParameterFormTest, ModelsAndLastSeed) {
    ParameterForm form(false);
    form.setModels({{QStringLiteral("easel-shapes-64"), QStringLiteral("Shapes"), QString(), true, 64, 64, 20},
                    {QStringLiteral("sd15"), QStringLiteral("SD 1.5"), QString(), false, 512, 512, 30}});
    GenerationParams p;
    p.modelId = QStringLiteral("sd15");
    form.setParams(p);
    EXPECT_EQ(form.params().modelId, QStringLiteral("sd15"));
    form.setLastSeed(4242);
    auto* reuse = form.findChild<QWidget*>(QStringLiteral("reuse_seed"));
    ASSERT_NE(reuse, nullptr);
    EXPECT_TRUE(reuse->isEnabled());
    QMetaObject::invokeMethod(reuse, "click");
    EXPECT_EQ(form.params().seed, 4242);
}

TEST(ParameterFormTest, SizePresetsFollowTheSelectedModelsFamily) {
    ParameterForm form(false);
    form.setModels(builtinAndSDXL());
    auto* presets = form.findChild<QComboBox*>(QStringLiteral("size_preset"));
    auto* model = form.findChild<QComboBox*>(QStringLiteral("model"));
    ASSERT_NE(presets, nullptr);
    ASSERT_NE(model, nullptr);
    const auto offered = [&] {
        QList<QSize> sizes;
        for (int i = 0; i < presets->count(); ++i) {
            if (presets->itemData(i).toSize().isValid()) sizes << presets->itemData(i).toSize();
        }
        return sizes;
    };
    EXPECT_EQ(offered(), ParameterForm::sizePresets(QStringLiteral("sd1")));
    EXPECT_EQ(presets->currentData().toSize(), QSize(64, 64));

    // Choosing the SDXL model as a user does: its buckets, 1024² (its default) selected.
    model->setCurrentIndex(model->findData(QStringLiteral("sdxl-base")));
    QMetaObject::invokeMethod(model, "activated", Q_ARG(int, model->currentIndex()));
    EXPECT_EQ(offered(), ParameterForm::sizePresets(QStringLiteral("sdxl")));
    EXPECT_EQ(offered().front(), QSize(1024, 1024));
    EXPECT_TRUE(offered().contains(QSize(832, 1216)));
    EXPECT_FALSE(offered().contains(QSize(64, 64)));
    EXPECT_EQ(form.params().width, 1024);
    EXPECT_EQ(presets->currentData().toSize(), QSize(1024, 1024));
    // A preset of the family sets the size.
    const int portrait = presets->findData(QSize(832, 1216));
    presets->setCurrentIndex(portrait);
    QMetaObject::invokeMethod(presets, "activated", Q_ARG(int, portrait));
    EXPECT_EQ(form.params().width, 832);
    EXPECT_EQ(form.params().height, 1216);
    form.resize(520, form.sizeHint().height());
    saveScreenshot(form, QStringLiteral("parameter_form_sdxl"));

    // Back to the built-in model: its presets again; a size no preset has reads "Custom".
    model->setCurrentIndex(model->findData(QStringLiteral("easel-shapes-64")));
    EXPECT_EQ(offered(), ParameterForm::sizePresets(QStringLiteral("sd1")));
    EXPECT_FALSE(presets->currentData().toSize().isValid());
}

TEST(GenerationParamsTest, SDXLSizeConditioningGoesInOnlyWhereSetAndComesBackFromMeta) {
    GenerationParams p;
    EXPECT_FALSE(requestBody(GenerationKind::Text2Img, p, QStringLiteral("k")).contains(QStringLiteral("crop_top")));
    p.sizes.originalWidth = 512;
    p.sizes.originalHeight = 384;
    p.sizes.cropTop = 64;
    const auto body = requestBody(GenerationKind::Text2Img, p, QStringLiteral("k"));
    EXPECT_EQ(body.value(QStringLiteral("original_width")).toInt(), 512);
    EXPECT_EQ(body.value(QStringLiteral("original_height")).toInt(), 384);
    EXPECT_EQ(body.value(QStringLiteral("crop_top")).toInt(), 64);
    for (const auto* unset : {"crop_left", "target_width", "target_height"})
        EXPECT_FALSE(body.contains(QLatin1String(unset))) << unset;  // 0: the server's default

    const QJsonObject meta{{QStringLiteral("original_width"), 2048}, {QStringLiteral("target_height"), 896}};
    const auto back = paramsFromMeta(meta);
    EXPECT_EQ(back.sizes.originalWidth, 2048);
    EXPECT_EQ(back.sizes.targetHeight, 896);
    EXPECT_EQ(back.sizes.cropTop, 0);

    QTemporaryDir dir;
    QSettings settings(dir.filePath(QStringLiteral("s.ini")), QSettings::IniFormat);
    saveParams(settings, QStringLiteral("txt2img"), p);
    EXPECT_EQ(loadParams(settings, QStringLiteral("txt2img")).sizes, p.sizes);
}

// The SDXL size conditioning group: shown for SDXL models only, off by default (nothing sent), its
// fields in the request once switched on.
TEST(ParameterFormTest, SizeConditioningIsOfferedForSDXLModelsOnly) {
    ParameterForm form(false);
    form.setModels(builtinAndSDXL());
    auto* group = form.findChild<QGroupBox*>(QStringLiteral("size_conditioning"));
    auto* model = form.findChild<QComboBox*>(QStringLiteral("model"));
    auto* cropTop = form.findChild<QSpinBox*>(QStringLiteral("crop_top"));
    auto* originalWidth = form.findChild<QSpinBox*>(QStringLiteral("original_width"));
    ASSERT_NE(group, nullptr);
    ASSERT_NE(cropTop, nullptr);
    ASSERT_NE(originalWidth, nullptr);
    EXPECT_TRUE(group->isHidden());

    model->setCurrentIndex(model->findData(QStringLiteral("sdxl-base")));
    EXPECT_FALSE(group->isHidden());
    EXPECT_FALSE(group->isChecked());
    EXPECT_FALSE(cropTop->isEnabled());
    EXPECT_EQ(form.params().sizes, SizeConditioning{});
    group->setChecked(true);
    EXPECT_TRUE(cropTop->isEnabled());
    originalWidth->setValue(512);
    cropTop->setValue(128);
    EXPECT_EQ(form.params().sizes.originalWidth, 512);
    EXPECT_EQ(form.params().sizes.cropTop, 128);
    const auto body = requestBody(GenerationKind::Text2Img, form.params(), QStringLiteral("k"));
    EXPECT_EQ(body.value(QStringLiteral("original_width")).toInt(), 512);
    EXPECT_EQ(body.value(QStringLiteral("crop_top")).toInt(), 128);
    EXPECT_FALSE(body.contains(QStringLiteral("original_height")));
    form.resize(520, form.sizeHint().height());
    saveScreenshot(form, QStringLiteral("parameter_form_sdxl_size_conditioning"));

    // Switched off, or another family's model: nothing is sent (the values stay for later).
    group->setChecked(false);
    EXPECT_EQ(form.params().sizes, SizeConditioning{});
    group->setChecked(true);
    model->setCurrentIndex(model->findData(QStringLiteral("easel-shapes-64")));
    EXPECT_TRUE(group->isHidden());
    EXPECT_EQ(form.params().sizes, SizeConditioning{});

    // Parameters that carry sizes (a reply's meta) switch it on with their values.
    model->setCurrentIndex(model->findData(QStringLiteral("sdxl-base")));
    GenerationParams p = form.params();
    EXPECT_EQ(p.sizes.originalWidth, 512);  // kept while it was hidden
    p.sizes = {};
    form.setParams(p);
    EXPECT_FALSE(group->isChecked());  // none: off
    p.sizes.targetWidth = 2048;
    form.setParams(p);
    EXPECT_TRUE(group->isChecked());
    EXPECT_EQ(form.params().sizes.targetWidth, 2048);
    EXPECT_EQ(form.params().sizes.originalWidth, 0);
}

}  // namespace
}  // namespace easel::ui
