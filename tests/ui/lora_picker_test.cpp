#include "ui/lora_picker.h"

#include <gtest/gtest.h>

#include <QAction>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QMenu>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSlider>
#include <QToolButton>

#include "ui/parameter_form.h"
#include "ui/text_to_image_pane.h"
#include "ui_test_support.h"

namespace easel::ui {
namespace {

ModelInfo model(const QString& id, const QString& category, const QString& family, bool isDefault = false) {
    ModelInfo m;
    m.modelId = id;
    m.name = id;
    m.category = category;
    m.family = family;
    m.isDefault = isDefault;
    return m;
}

// Two SD 1.x / 2.x checkpoints, LoRAs for each and one of unknown family, and embeddings.
QList<ModelInfo> serverModels() {
    return {model(QStringLiteral("sd15"), QStringLiteral("stable_diffusion"), QStringLiteral("sd1"), true),
            model(QStringLiteral("sd21"), QStringLiteral("stable_diffusion"), QStringLiteral("sd2")),
            model(QStringLiteral("pixel-art"), QStringLiteral("lora"), QStringLiteral("sd1")),
            model(QStringLiteral("ink-v2"), QStringLiteral("lora"), QStringLiteral("sd2")),
            model(QStringLiteral("mystery"), QStringLiteral("lora"), QString()),
            model(QStringLiteral("emb-style"), QStringLiteral("embeddings"), QStringLiteral("sd1")),
            model(QStringLiteral("emb-two"), QStringLiteral("embeddings"), QStringLiteral("sd2"))};
}

QStringList actionIds(const QMenu* menu, bool enabled) {
    QStringList out;
    for (const QAction* a : menu->actions()) {
        if (a->isEnabled() == enabled) out << a->text();
    }
    return out;
}

QAction* actionNamed(const QMenu* menu, const QString& text) {
    for (QAction* a : menu->actions()) {
        if (a->text() == text) return a;
    }
    return nullptr;
}

TEST(LoraPickerTest, OffersOnlyTheLorasOfTheSelectedModelsFamily) {
    ParameterForm form(false);
    form.setModels(serverModels());
    // LoRAs and embeddings are no choice of model.
    auto* modelBox = form.findChild<QComboBox*>(QStringLiteral("model"));
    ASSERT_EQ(modelBox->count(), 3);  // "Server default", sd15, sd21
    EXPECT_EQ(modelBox->itemData(1).toString(), QStringLiteral("sd15"));
    EXPECT_EQ(modelBox->itemData(2).toString(), QStringLiteral("sd21"));

    const LoraPicker* picker = form.loraPicker();
    // The server default is sd15 (sd1).
    EXPECT_EQ(actionIds(picker->loraMenu(), true),
              (QStringList{QStringLiteral("pixel-art"), QStringLiteral("mystery")}));
    EXPECT_EQ(actionIds(picker->loraMenu(), false), QStringList{QStringLiteral("ink-v2")});
    EXPECT_EQ(actionNamed(picker->loraMenu(), QStringLiteral("ink-v2"))->toolTip(),
              QStringLiteral("Made for sd2 models; the selected model is sd1"));
    EXPECT_EQ(actionIds(picker->embeddingMenu(), true), QStringList{QStringLiteral("emb-style")});
    EXPECT_EQ(picker->embeddingTriggers(), QStringList{QStringLiteral("emb-style")});

    modelBox->setCurrentIndex(2);  // sd21
    EXPECT_EQ(actionIds(picker->loraMenu(), true), (QStringList{QStringLiteral("ink-v2"), QStringLiteral("mystery")}));
    EXPECT_EQ(actionIds(picker->embeddingMenu(), true), QStringList{QStringLiteral("emb-two")});
    auto* hint = picker->findChild<QLabel*>(QStringLiteral("lora_hint"));
    EXPECT_TRUE(hint->isHidden());
}

TEST(LoraPickerTest, RowsCarryTheirStrengthIntoTheParams) {
    ParameterForm form(false);
    form.setModels(serverModels());
    LoraPicker* picker = form.loraPicker();
    actionNamed(picker->loraMenu(), QStringLiteral("pixel-art"))->trigger();
    actionNamed(picker->loraMenu(), QStringLiteral("mystery"))->trigger();
    EXPECT_EQ(form.params().loras,
              (QList<LoraChoice>{{QStringLiteral("pixel-art"), 1.0}, {QStringLiteral("mystery"), 1.0}}));
    // Added once: its entry is off now.
    EXPECT_FALSE(actionNamed(picker->loraMenu(), QStringLiteral("pixel-art"))->isEnabled());

    auto sliders = picker->findChildren<QSlider*>(QStringLiteral("lora_slider"));
    auto spins = picker->findChildren<QDoubleSpinBox*>(QStringLiteral("lora_strength"));
    ASSERT_EQ(sliders.size(), 2);
    ASSERT_EQ(spins.size(), 2);
    EXPECT_EQ(sliders[0]->minimum(), -400);
    EXPECT_EQ(sliders[0]->maximum(), 400);
    EXPECT_DOUBLE_EQ(spins[0]->minimum(), -4.0);
    EXPECT_DOUBLE_EQ(spins[0]->maximum(), 4.0);
    EXPECT_DOUBLE_EQ(spins[0]->singleStep(), 0.05);
    sliders[0]->setValue(-135);
    EXPECT_DOUBLE_EQ(spins[0]->value(), -1.35);
    spins[1]->setValue(0.6);
    EXPECT_EQ(sliders[1]->value(), 60);
    EXPECT_EQ(form.params().loras,
              (QList<LoraChoice>{{QStringLiteral("pixel-art"), -1.35}, {QStringLiteral("mystery"), 0.6}}));
    const auto body = requestBody(GenerationKind::Text2Img, form.params(), QStringLiteral("k"));
    EXPECT_EQ(body.value(QStringLiteral("lora_model")).toString(), QStringLiteral("pixel-art,mystery"));
    EXPECT_EQ(body.value(QStringLiteral("lora_strength")).toString(), QStringLiteral("-1.35,0.6"));

    picker->findChild<QWidget*>(QStringLiteral("lora_row_pixel-art"))
        ->findChild<QToolButton*>(QStringLiteral("remove_lora"))
        ->click();
    EXPECT_EQ(form.params().loras, (QList<LoraChoice>{{QStringLiteral("mystery"), 0.6}}));
    EXPECT_TRUE(actionNamed(picker->loraMenu(), QStringLiteral("pixel-art"))->isEnabled());
}

TEST(LoraPickerTest, EmptyServerSaysHowToGetLoras) {
    ParameterForm form(false);
    form.setModels({model(QStringLiteral("sd15"), QStringLiteral("stable_diffusion"), QStringLiteral("sd1"), true)});
    const LoraPicker* picker = form.loraPicker();
    auto* hint = picker->findChild<QLabel*>(QStringLiteral("lora_hint"));
    EXPECT_FALSE(hint->isHidden());
    EXPECT_TRUE(hint->text().startsWith(QStringLiteral("No LoRAs yet.")));
    EXPECT_TRUE(hint->text().contains(QStringLiteral("/api/v1/models/load")));
    EXPECT_FALSE(picker->findChild<QPushButton*>(QStringLiteral("add_lora"))->isEnabled());
    EXPECT_FALSE(picker->findChild<QPushButton*>(QStringLiteral("insert_embedding"))->isEnabled());
    form.resize(480, form.sizeHint().height());
    form.show();
    saveScreenshot(form, QStringLiteral("lora_picker_empty"));

    // LoRAs, but none for this family.
    form.setModels({model(QStringLiteral("sd15"), QStringLiteral("stable_diffusion"), QStringLiteral("sd1"), true),
                    model(QStringLiteral("ink-v2"), QStringLiteral("lora"), QStringLiteral("sd2"))});
    EXPECT_EQ(hint->text(), QStringLiteral("None of the 1 LoRA(s) on this server fits the selected model (sd1)."));
    EXPECT_FALSE(picker->findChild<QPushButton*>(QStringLiteral("add_lora"))->isEnabled());
}

TEST(LoraPickerTest, RecalledLorasTheServerLacksAreKeptAndNamed) {
    ParameterForm form(false);
    GenerationParams p;
    p.loras = {{QStringLiteral("pixel-art"), 0.7}, {QStringLiteral("gone"), 0.5}};
    form.setParams(p);
    // Before the list arrives nothing is known to be missing.
    EXPECT_TRUE(form.loraPicker()->unknownLoras().isEmpty());
    form.setModels(serverModels());
    EXPECT_EQ(form.params().loras, p.loras);
    EXPECT_EQ(form.loraPicker()->unknownLoras(), QStringList{QStringLiteral("gone")});
    auto* gone = form.loraPicker()->findChild<QWidget*>(QStringLiteral("lora_row_gone"))->findChild<QLabel*>();
    EXPECT_EQ(gone->text(), QStringLiteral("⚠ gone"));
    EXPECT_TRUE(gone->toolTip().startsWith(QStringLiteral("This server has no LoRA named gone")));
    // A LoRA for another family than the chosen model's is kept too, marked with the reason.
    form.loraPicker()->addLora(QStringLiteral("ink-v2"), 0.4);
    auto* ink = form.loraPicker()->findChild<QWidget*>(QStringLiteral("lora_row_ink-v2"))->findChild<QLabel*>();
    EXPECT_EQ(ink->text(), QStringLiteral("⚠ ink-v2"));
    EXPECT_TRUE(ink->toolTip().startsWith(QStringLiteral("Made for sd2 models; the selected model is sd1")));
    EXPECT_EQ(form.loraPicker()->misfitLoras(), QStringList{QStringLiteral("ink-v2")});
    EXPECT_EQ(form.loraPicker()->unknownLoras(), QStringList{QStringLiteral("gone")});
    form.resize(480, form.sizeHint().height());
    form.show();
    saveScreenshot(form, QStringLiteral("lora_picker_missing"));
}

TEST(LoraPickerTest, AnEmbeddingEntryInsertsItsTriggerAtTheCursor) {
    TextToImagePane pane;
    pane.form()->setModels(serverModels());
    auto* prompt = pane.findChild<QPlainTextEdit*>(QStringLiteral("prompt"));
    prompt->setPlainText(QStringLiteral("a cat, watercolor"));
    QTextCursor cursor = prompt->textCursor();
    cursor.setPosition(6);  // after "a cat,"
    prompt->setTextCursor(cursor);
    EXPECT_TRUE(pane.params().embeddings.isEmpty());
    actionNamed(pane.form()->loraPicker()->embeddingMenu(), QStringLiteral("emb-style"))->trigger();
    EXPECT_EQ(prompt->toPlainText(), QStringLiteral("a cat, emb-style watercolor"));
    EXPECT_EQ(prompt->textCursor().position(), 16);
    const auto params = pane.params();
    EXPECT_EQ(params.embeddings, QStringList{QStringLiteral("emb-style")});
    const auto body = requestBody(GenerationKind::Text2Img, params, QStringLiteral("k"));
    EXPECT_EQ(body.value(QStringLiteral("embeddings_model")).toString(), QStringLiteral("emb-style"));
    // Part of a longer word is not the trigger.
    prompt->setPlainText(QStringLiteral("emb-style2 emb-styles"));
    EXPECT_TRUE(pane.params().embeddings.isEmpty());
}

}  // namespace
}  // namespace easel::ui
