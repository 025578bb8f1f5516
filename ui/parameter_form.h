#pragma once
// The generation parameters every pane shares (model, scheduler, steps, guidance, size, SDXL's size
// conditioning, samples, seed, strength where an init image is involved, and the LoRA picker): one
// widget instead of three copies.

#include <QList>
#include <QWidget>
#include <array>
#include <optional>

#include "ui/api_types.h"
#include "ui/generation_params.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QGroupBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSlider;
class QSpinBox;

namespace easel::ui {

class LoraPicker;

class ParameterForm : public QWidget {
    Q_OBJECT
public:
    explicit ParameterForm(bool withStrength, QWidget* parent = nullptr);

    // Prompts are not part of the form; the pane adds them.
    GenerationParams params() const;
    void setParams(const GenerationParams& params);

    // The server's models; the default one is selected when the current choice is not among them.
    // LoRAs and embeddings in the list go to the LoRA picker, not the model box.
    void setModels(const QList<ModelInfo>& models);
    LoraPicker* loraPicker() const { return m_loras; }
    // The seed of the last finished image, for "Reuse last seed".
    void setLastSeed(std::optional<qint64> seed);
    void setMaxSteps(int maxSteps);

    // The (width, height) presets offered for a model family ("sd1", "sd2", "sdxl"; empty: unknown):
    // the sizes its models were trained at first (SDXL's 1024² buckets, SD 2.x's 768²), the built-in
    // model's 64² for SD 1.x and unknown families.
    static QList<QSize> sizePresets(const QString& family = {});

signals:
    void changed();

private:
    void applyModelDefaults(int index);
    void syncPresetWithSize();
    void fillSizePresets(const QString& family);
    // The LoRA picker offers what fits the selected model's family.
    void updateModelFamily();

    QComboBox* m_model;
    QComboBox* m_scheduler;
    QCheckBox* m_karras;
    QSpinBox* m_steps;
    QDoubleSpinBox* m_guidance;
    QComboBox* m_sizePreset;
    QSpinBox* m_width;
    QSpinBox* m_height;
    QSpinBox* m_samples;
    // SDXL only (hidden for other families): off sends no size conditioning.
    QGroupBox* m_sizeConditioning;
    std::array<QSpinBox*, SizeConditioning::kFields.size()> m_sizeFields{};
    QCheckBox* m_randomSeed;
    QLineEdit* m_seed;
    QPushButton* m_reuseSeed;
    QSlider* m_strength = nullptr;
    QLabel* m_strengthValue = nullptr;
    LoraPicker* m_loras;
    QList<ModelInfo> m_models;
    QString m_presetFamily;
    std::optional<qint64> m_lastSeed;
};

}  // namespace easel::ui
