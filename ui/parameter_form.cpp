#include "ui/parameter_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpressionValidator>
#include <QSignalBlocker>
#include <QSlider>
#include <QSpinBox>

#include "common/request_limits.h"
#include "ui/lora_picker.h"

namespace easel::ui {

namespace {

QSpinBox* spinBox(int min, int max, int step, QWidget* parent) {
    auto* box = new QSpinBox(parent);
    box->setRange(min, max);
    box->setSingleStep(step);
    return box;
}

// QFormLayout only gives a label a buddy (and so a working mnemonic) for a widget row; a layout
// row needs its label made by hand.
void addRow(QFormLayout* form, const QString& text, QWidget* buddy, QLayout* row) {
    auto* label = new QLabel(text, buddy->parentWidget());
    label->setBuddy(buddy);
    form->addRow(label, row);
}

}  // namespace

QList<QSize> ParameterForm::sizePresets(const QString& family) {
    if (family == QLatin1String("sdxl")) {
        // SDXL's training buckets around a megapixel, and 512² for the Turbo models.
        return {{1024, 1024}, {1152, 896}, {896, 1152}, {1216, 832}, {832, 1216}, {1344, 768}, {768, 1344}, {512, 512}};
    }
    if (family == QLatin1String("sd2")) return {{768, 768}, {512, 512}, {768, 512}, {512, 768}};
    return {{64, 64}, {512, 512}, {768, 768}, {512, 768}, {768, 512}};
}

ParameterForm::ParameterForm(bool withStrength, QWidget* parent)
    : QWidget(parent),
      m_model(new QComboBox(this)),
      m_scheduler(new QComboBox(this)),
      m_karras(new QCheckBox(tr("Karras sigmas"), this)),
      m_steps(spinBox(1, 150, 1, this)),
      m_guidance(new QDoubleSpinBox(this)),
      m_sizePreset(new QComboBox(this)),
      m_width(spinBox(64, 2048, 8, this)),
      m_height(spinBox(64, 2048, 8, this)),
      m_samples(spinBox(1, 4, 1, this)),
      m_sizeConditioning(new QGroupBox(tr("SDXL size c&onditioning"), this)),
      m_randomSeed(new QCheckBox(tr("Random"), this)),
      m_seed(new QLineEdit(this)),
      m_reuseSeed(new QPushButton(tr("Reuse last"), this)),
      m_loras(new LoraPicker(this)) {
    auto* form = new QFormLayout(this);
    form->setContentsMargins(0, 0, 0, 0);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);

    m_model->setObjectName(QStringLiteral("model"));
    m_model->addItem(tr("Server default"), QString());
    form->addRow(tr("&Model"), m_model);

    m_scheduler->setObjectName(QStringLiteral("scheduler"));
    for (const auto& name : schedulerNames()) m_scheduler->addItem(name.isEmpty() ? tr("Model default") : name, name);
    m_scheduler->setToolTip(tr("Model default: the sampler the model was made for"));
    auto* schedulerRow = new QHBoxLayout;
    schedulerRow->addWidget(m_scheduler, 1);
    schedulerRow->addWidget(m_karras);
    addRow(form, tr("S&cheduler"), m_scheduler, schedulerRow);

    m_steps->setObjectName(QStringLiteral("steps"));
    m_guidance->setObjectName(QStringLiteral("guidance"));
    m_guidance->setRange(0, 30);
    m_guidance->setSingleStep(0.5);
    m_guidance->setDecimals(1);
    auto* stepsRow = new QHBoxLayout;
    stepsRow->addWidget(m_steps, 1);
    stepsRow->addWidget(new QLabel(tr("&Guidance"), this));
    stepsRow->addWidget(m_guidance, 1);
    static_cast<QLabel*>(stepsRow->itemAt(1)->widget())->setBuddy(m_guidance);
    addRow(form, tr("S&teps"), m_steps, stepsRow);

    m_sizePreset->setObjectName(QStringLiteral("size_preset"));
    fillSizePresets({});
    m_width->setObjectName(QStringLiteral("width"));
    m_height->setObjectName(QStringLiteral("height"));
    auto* sizeRow = new QHBoxLayout;
    sizeRow->addWidget(m_sizePreset, 2);
    sizeRow->addWidget(m_width, 1);
    sizeRow->addWidget(new QLabel(QStringLiteral("×"), this));
    sizeRow->addWidget(m_height, 1);
    addRow(form, tr("Si&ze"), m_sizePreset, sizeRow);

    // What SDXL is told about the picture (sgm's original_size, crop_coords_top_left, target_size).
    m_sizeConditioning->setObjectName(QStringLiteral("size_conditioning"));
    m_sizeConditioning->setCheckable(true);
    m_sizeConditioning->setToolTip(
        tr("SDXL was trained knowing each picture's original size and crop. A small original size gives "
           "the look of an upscaled small picture, a crop offset a picture cut off at the top or left. "
           "Off, or a size of 0: the image's own size and no crop."));
    auto* grid = new QGridLayout(m_sizeConditioning);
    const std::array<QString, SizeConditioning::kFields.size()> labels{tr("Original width"), tr("Original height"),
                                                                       tr("Crop top"),       tr("Crop left"),
                                                                       tr("Target width"),   tr("Target height")};
    for (std::size_t i = 0; i < m_sizeFields.size(); ++i) {
        const auto name = SizeConditioning::kFields[i].first;
        auto* box = spinBox(limits::kSizeConditioning.min, limits::kSizeConditioning.max, 8, m_sizeConditioning);
        box->setObjectName(QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size())));
        if (!name.starts_with("crop")) box->setSpecialValueText(tr("same as image"));
        m_sizeFields[i] = box;
        auto* label = new QLabel(labels[i], m_sizeConditioning);
        label->setBuddy(box);
        const int row = static_cast<int>(i / 2), column = static_cast<int>(i % 2) * 2;
        grid->addWidget(label, row, column);
        grid->addWidget(box, row, column + 1);
        connect(box, &QSpinBox::valueChanged, this, &ParameterForm::changed);
    }
    m_sizeConditioning->setVisible(false);  // until an SDXL model is chosen
    form->addRow(m_sizeConditioning);
    connect(m_sizeConditioning, &QGroupBox::toggled, this, [this](bool on) {
        for (auto* box : m_sizeFields) box->setEnabled(on);
        emit changed();
    });

    m_samples->setObjectName(QStringLiteral("samples"));
    form->addRow(tr("Sam&ples"), m_samples);

    m_seed->setObjectName(QStringLiteral("seed"));
    m_seed->setValidator(new QRegularExpressionValidator(QRegularExpression(QStringLiteral("\\d{0,18}")), m_seed));
    m_seed->setPlaceholderText(tr("random"));
    m_randomSeed->setObjectName(QStringLiteral("random_seed"));
    m_reuseSeed->setObjectName(QStringLiteral("reuse_seed"));
    m_reuseSeed->setEnabled(false);
    auto* seedRow = new QHBoxLayout;
    seedRow->addWidget(m_randomSeed);
    seedRow->addWidget(m_seed, 1);
    seedRow->addWidget(m_reuseSeed);
    addRow(form, tr("S&eed"), m_seed, seedRow);

    if (withStrength) {
        m_strength = new QSlider(Qt::Horizontal, this);
        m_strength->setObjectName(QStringLiteral("strength"));
        m_strength->setRange(0, 100);
        m_strengthValue = new QLabel(this);
        m_strengthValue->setMinimumWidth(QFontMetrics(font()).horizontalAdvance(QStringLiteral("0.00 ")));
        auto* strengthRow = new QHBoxLayout;
        strengthRow->addWidget(m_strength, 1);
        strengthRow->addWidget(m_strengthValue);
        addRow(form, tr("St&rength"), m_strength, strengthRow);
        connect(m_strength, &QSlider::valueChanged, this, [this](int v) {
            m_strengthValue->setText(QString::number(v / 100.0, 'f', 2));
            emit changed();
        });
    }

    auto* lorasLabel = new QLabel(tr("&LoRAs"), this);
    lorasLabel->setBuddy(m_loras->findChild<QPushButton*>(QStringLiteral("add_lora")));
    form->addRow(lorasLabel, m_loras);
    connect(m_loras, &LoraPicker::changed, this, &ParameterForm::changed);

    connect(m_randomSeed, &QCheckBox::toggled, this, [this](bool random) {
        m_seed->setEnabled(!random);
        emit changed();
    });
    connect(m_reuseSeed, &QPushButton::clicked, this, [this] {
        if (!m_lastSeed) return;
        m_randomSeed->setChecked(false);
        m_seed->setText(QString::number(*m_lastSeed));
    });
    connect(m_sizePreset, &QComboBox::activated, this, [this](int index) {
        const QSize s = m_sizePreset->itemData(index).toSize();
        if (s.isEmpty()) return;
        m_width->setValue(s.width());
        m_height->setValue(s.height());
    });
    connect(m_width, &QSpinBox::valueChanged, this, &ParameterForm::syncPresetWithSize);
    connect(m_height, &QSpinBox::valueChanged, this, &ParameterForm::syncPresetWithSize);
    connect(m_model, &QComboBox::activated, this, &ParameterForm::applyModelDefaults);
    connect(m_model, &QComboBox::currentIndexChanged, this, &ParameterForm::updateModelFamily);
    for (auto* box : {m_steps, m_samples}) connect(box, &QSpinBox::valueChanged, this, &ParameterForm::changed);
    connect(m_guidance, &QDoubleSpinBox::valueChanged, this, &ParameterForm::changed);
    connect(m_scheduler, &QComboBox::currentIndexChanged, this, &ParameterForm::changed);
    connect(m_karras, &QCheckBox::toggled, this, &ParameterForm::changed);
    // Karras sigmas modify a chosen scheduler; the model's default carries its own.
    connect(m_scheduler, &QComboBox::currentIndexChanged, this,
            [this] { m_karras->setEnabled(!m_scheduler->currentData().toString().isEmpty()); });
    connect(m_seed, &QLineEdit::textChanged, this, &ParameterForm::changed);

    setParams(GenerationParams{});
}

GenerationParams ParameterForm::params() const {
    GenerationParams p;
    p.modelId = m_model->currentData().toString();
    p.scheduler = m_scheduler->currentData().toString();
    p.karrasSigmas = m_karras->isChecked();
    p.steps = m_steps->value();
    p.guidanceScale = m_guidance->value();
    p.width = m_width->value();
    p.height = m_height->value();
    p.samples = m_samples->value();
    bool ok = false;
    const qint64 seed = m_seed->text().toLongLong(&ok);
    if (!m_randomSeed->isChecked() && ok) p.seed = seed;
    if (m_strength != nullptr) p.strength = m_strength->value() / 100.0;
    p.loras = m_loras->loras();
    if (!m_sizeConditioning->isHidden() && m_sizeConditioning->isChecked()) {
        for (std::size_t i = 0; i < m_sizeFields.size(); ++i)
            p.sizes.*SizeConditioning::kFields[i].second = m_sizeFields[i]->value();
    }
    return p;
}

void ParameterForm::setParams(const GenerationParams& p) {
    int modelIndex = m_model->findData(p.modelId);
    if (modelIndex < 0) {
        // A model this server does not list (e.g. from another machine's PNG) is kept, marked.
        m_model->addItem(tr("%1 (not on this server)").arg(p.modelId), p.modelId);
        modelIndex = m_model->count() - 1;
    }
    m_model->setCurrentIndex(modelIndex);
    const int schedulerIndex = m_scheduler->findData(p.scheduler);
    m_scheduler->setCurrentIndex(schedulerIndex < 0 ? 0 : schedulerIndex);
    m_karras->setChecked(p.karrasSigmas);
    m_karras->setEnabled(!p.scheduler.isEmpty() && schedulerIndex > 0);
    m_steps->setValue(p.steps);
    m_guidance->setValue(p.guidanceScale);
    m_width->setValue(p.width);
    m_height->setValue(p.height);
    m_samples->setValue(p.samples);
    m_randomSeed->setChecked(!p.seed.has_value());
    m_seed->setEnabled(!m_randomSeed->isChecked());
    m_seed->setText(p.seed ? QString::number(*p.seed) : QString());
    if (m_strength != nullptr) {
        m_strength->setValue(qRound(p.strength * 100));
        m_strengthValue->setText(QString::number(m_strength->value() / 100.0, 'f', 2));
    }
    m_loras->setLoras(p.loras);
    for (std::size_t i = 0; i < m_sizeFields.size(); ++i)
        m_sizeFields[i]->setValue(p.sizes.*SizeConditioning::kFields[i].second);
    m_sizeConditioning->setChecked(p.sizes != SizeConditioning{});
    for (auto* box : m_sizeFields) box->setEnabled(m_sizeConditioning->isChecked());
    syncPresetWithSize();
}

void ParameterForm::setModels(const QList<ModelInfo>& models) {
    const QString current = m_model->currentData().toString();
    // The first model list on a form nobody has set yet (no saved parameters, nothing changed): the
    // chosen model's own size, steps and guidance apply, as when it is picked from the list. The
    // built-in model wants guidance 1, not the 7.5 of SD models.
    const GenerationParams now = params();
    GenerationParams untouched;  // a new form, apart from what is typed per request
    untouched.modelId = now.modelId;
    untouched.prompt = now.prompt;
    untouched.negativePrompt = now.negativePrompt;
    untouched.seed = now.seed;
    untouched.strength = now.strength;
    untouched.loras = now.loras;
    const bool adoptDefaults = m_models.isEmpty() && now == untouched;
    m_models = modelsOfCategory(models, QStringLiteral("stable_diffusion"));
    m_model->clear();
    m_model->addItem(tr("Server default"), QString());
    for (const auto& m : m_models) {
        if (m.isDefault) m_model->setItemText(0, tr("Server default (%1)").arg(m.name));
        m_model->addItem(m.isDefault ? tr("%1 (default)").arg(m.name) : m.name, m.modelId);
        m_model->setItemData(m_model->count() - 1, m.description, Qt::ToolTipRole);
    }
    const int index = m_model->findData(current);
    m_model->setCurrentIndex(index < 0 ? 0 : index);
    m_loras->setAdapters(modelsOfCategory(models, QStringLiteral("lora")),
                         modelsOfCategory(models, QStringLiteral("embeddings")));
    updateModelFamily();
    if (adoptDefaults) applyModelDefaults(m_model->currentIndex());
}

void ParameterForm::updateModelFamily() {
    const QString id = m_model->currentData().toString();
    QString family;
    for (const auto& m : m_models) {
        if (m.modelId == id || (id.isEmpty() && m.isDefault)) family = m.family;
    }
    m_loras->setModelFamily(family);
    fillSizePresets(family);
    m_sizeConditioning->setVisible(family == QLatin1String("sdxl"));
}

void ParameterForm::fillSizePresets(const QString& family) {
    if (family == m_presetFamily && m_sizePreset->count() > 0) return;
    m_presetFamily = family;
    const QSignalBlocker blocker(m_sizePreset);
    m_sizePreset->clear();
    for (const QSize& s : sizePresets(family)) {
        const QString label = s == QSize(64, 64) ? tr("%1 × %2 (built-in model)") : tr("%1 × %2");
        m_sizePreset->addItem(label.arg(s.width()).arg(s.height()), s);
    }
    m_sizePreset->addItem(tr("Custom"), QSize());
    const int index = m_sizePreset->findData(QSize(m_width->value(), m_height->value()));
    m_sizePreset->setCurrentIndex(index < 0 ? m_sizePreset->count() - 1 : index);
}

void ParameterForm::applyModelDefaults(int index) {
    const QString id = m_model->itemData(index).toString();
    for (const auto& m : m_models) {
        if (m.modelId != id && !(id.isEmpty() && m.isDefault)) continue;
        m_width->setValue(m.defaultWidth);
        m_height->setValue(m.defaultHeight);
        m_steps->setValue(m.defaultSteps);
        m_guidance->setValue(m.defaultGuidance);
        break;
    }
    emit changed();
}

void ParameterForm::setLastSeed(std::optional<qint64> seed) {
    m_lastSeed = seed;
    m_reuseSeed->setEnabled(seed.has_value());
    m_reuseSeed->setToolTip(seed ? tr("Use seed %1 again").arg(*seed) : QString());
}

void ParameterForm::setMaxSteps(int maxSteps) {
    if (maxSteps > 0) m_steps->setMaximum(maxSteps);
}

void ParameterForm::syncPresetWithSize() {
    const int index = m_sizePreset->findData(QSize(m_width->value(), m_height->value()));
    m_sizePreset->setCurrentIndex(index < 0 ? m_sizePreset->count() - 1 : index);
    emit changed();
}

}  // namespace easel::ui
