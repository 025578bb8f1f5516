#include "ui/lora_picker.h"

#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSlider>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "common/request_limits.h"

namespace easel::ui {

namespace {

// The slider works in hundredths; the spin box shows the same value with two decimals.
constexpr int kSliderScale = 100;
constexpr double kStrengthStep = 0.05;

int sliderValue(double strength) { return static_cast<int>(std::lround(strength * kSliderScale)); }

QString displayName(const ModelInfo& m) { return m.name.isEmpty() ? m.modelId : m.name; }

QString describe(const ModelInfo& m) {
    QStringList lines{m.modelId};
    if (!m.family.isEmpty()) lines << LoraPicker::tr("For %1 models").arg(m.family);
    if (!m.description.isEmpty()) lines << m.description;
    return lines.join(QLatin1Char('\n'));
}

}  // namespace

LoraPicker::LoraPicker(QWidget* parent)
    : QWidget(parent),
      m_rows(new QVBoxLayout),
      m_hint(new QLabel(this)),
      m_add(new QPushButton(tr("Add LoRA"), this)),
      m_insertEmbedding(new QPushButton(tr("Insert embedding"), this)),
      m_loraMenu(new QMenu(m_add)),
      m_embeddingMenu(new QMenu(m_insertEmbedding)) {
    setObjectName(QStringLiteral("lora_picker"));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);
    m_rows->setContentsMargins(0, 0, 0, 0);
    m_rows->setSpacing(0);
    layout->addLayout(m_rows);

    m_add->setObjectName(QStringLiteral("add_lora"));
    m_add->setMenu(m_loraMenu);
    m_insertEmbedding->setObjectName(QStringLiteral("insert_embedding"));
    m_insertEmbedding->setMenu(m_embeddingMenu);
    for (QMenu* menu : {m_loraMenu, m_embeddingMenu}) menu->setToolTipsVisible(true);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_add);
    buttons->addWidget(m_insertEmbedding);
    buttons->addStretch();
    layout->addLayout(buttons);

    m_hint->setObjectName(QStringLiteral("lora_hint"));
    m_hint->setWordWrap(true);
    m_hint->setForegroundRole(QPalette::PlaceholderText);
    layout->addWidget(m_hint);
    refresh();
}

void LoraPicker::setAdapters(const QList<ModelInfo>& loras, const QList<ModelInfo>& embeddings) {
    m_loras = loras;
    m_embeddings = embeddings;
    m_listed = true;
    refresh();
}

void LoraPicker::setModelFamily(const QString& family) {
    if (family == m_family) return;
    m_family = family;
    refresh();
}

QList<LoraChoice> LoraPicker::loras() const {
    QList<LoraChoice> out;
    for (const auto& row : m_rowList) out.append({row.id, row.strength->value()});
    return out;
}

void LoraPicker::setLoras(const QList<LoraChoice>& loras) {
    const QSignalBlocker blocker(this);
    while (!m_rowList.isEmpty()) removeLora(m_rowList.front().id);
    for (const auto& l : loras) addLora(l.id, l.strength);
}

void LoraPicker::addLora(const QString& id, double strength) {
    for (const auto& row : m_rowList) {
        if (row.id != id) continue;
        row.strength->setValue(strength);
        return;
    }
    auto* widget = new QWidget(this);
    widget->setObjectName(QStringLiteral("lora_row_") + id);
    auto* line = new QHBoxLayout(widget);
    line->setContentsMargins(0, 0, 0, 0);
    Row row{id, widget, new QLabel(widget), new QSlider(Qt::Horizontal, widget), new QDoubleSpinBox(widget)};
    // Long names are cut rather than widening the whole form.
    row.name->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    row.name->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("MMMMMM")));
    row.slider->setObjectName(QStringLiteral("lora_slider"));
    row.slider->setRange(sliderValue(limits::kLoraStrength.min), sliderValue(limits::kLoraStrength.max));
    row.slider->setSingleStep(sliderValue(kStrengthStep));
    row.slider->setPageStep(sliderValue(0.25));
    // A tick per whole multiplier, so that 0 (off) and 1 (as trained) can be found by eye.
    row.slider->setTickPosition(QSlider::TicksBelow);
    row.slider->setTickInterval(kSliderScale);
    row.strength->setObjectName(QStringLiteral("lora_strength"));
    row.strength->setRange(limits::kLoraStrength.min, limits::kLoraStrength.max);
    row.strength->setSingleStep(kStrengthStep);
    row.strength->setDecimals(2);
    row.strength->setAccessibleName(tr("Strength of %1").arg(id));
    auto* remove = new QToolButton(widget);
    remove->setObjectName(QStringLiteral("remove_lora"));
    remove->setText(QStringLiteral("✕"));
    remove->setToolTip(tr("Remove %1").arg(id));
    remove->setAutoRaise(true);
    line->addWidget(row.name, 2);
    line->addWidget(row.slider, 3);
    line->addWidget(row.strength);
    line->addWidget(remove);
    m_rows->addWidget(widget);

    row.strength->setValue(strength);
    row.slider->setValue(sliderValue(row.strength->value()));
    connect(row.slider, &QSlider::valueChanged, row.strength, [spin = row.strength](int v) {
        const QSignalBlocker blocker(spin);
        spin->setValue(static_cast<double>(v) / kSliderScale);
    });
    connect(row.slider, &QSlider::valueChanged, this, &LoraPicker::changed);
    connect(row.strength, &QDoubleSpinBox::valueChanged, row.slider, [slider = row.slider](double v) {
        const QSignalBlocker blocker(slider);
        slider->setValue(sliderValue(v));
    });
    connect(row.strength, &QDoubleSpinBox::valueChanged, this, &LoraPicker::changed);
    connect(remove, &QToolButton::clicked, this, [this, id] { removeLora(id); });
    m_rowList.append(row);
    refresh();
    emit changed();
}

void LoraPicker::removeLora(const QString& id) {
    for (qsizetype i = 0; i < m_rowList.size(); ++i) {
        if (m_rowList[i].id != id) continue;
        // Later: this may run from the row's own remove button.
        m_rowList[i].widget->hide();
        m_rowList[i].widget->deleteLater();
        m_rowList.removeAt(i);
        refresh();
        emit changed();
        return;
    }
}

QStringList LoraPicker::unknownLoras() const {
    QStringList out;
    if (!m_listed) return out;
    for (const auto& row : m_rowList) {
        if (findLora(row.id) == nullptr) out << row.id;
    }
    return out;
}

QStringList LoraPicker::misfitLoras() const {
    QStringList out;
    for (const auto& row : m_rowList) {
        if (const ModelInfo* lora = findLora(row.id); lora != nullptr && !misfit(*lora).isEmpty()) out << row.id;
    }
    return out;
}

QStringList LoraPicker::embeddingTriggers() const {
    QStringList out;
    for (const auto& e : m_embeddings) {
        if (misfit(e).isEmpty()) out << e.modelId;
    }
    return out;
}

const ModelInfo* LoraPicker::findLora(const QString& id) const {
    for (const auto& m : m_loras) {
        if (m.modelId == id) return &m;
    }
    return nullptr;
}

QString LoraPicker::misfit(const ModelInfo& adapter) const {
    if (adapter.fitsFamily(m_family)) return {};
    return tr("Made for %1 models; the selected model is %2").arg(adapter.family, m_family);
}

void LoraPicker::markRow(const Row& row) const {
    const ModelInfo* lora = findLora(row.id);
    QString problem;
    if (m_listed && lora == nullptr) {
        problem = tr("This server has no LoRA named %1: install it, or remove it before generating").arg(row.id);
    } else if (lora != nullptr) {
        problem = misfit(*lora);
    }
    const QString name = lora != nullptr ? displayName(*lora) : row.id;
    row.name->setText(problem.isEmpty() ? name : QStringLiteral("⚠ ") + name);
    row.name->setToolTip(problem.isEmpty() ? (lora != nullptr ? describe(*lora) : row.id)
                                           : problem + QLatin1Char('\n') + row.id);
    // A warning orange that reads on light and dark palettes alike.
    QPalette palette = this->palette();
    if (!problem.isEmpty()) palette.setColor(QPalette::WindowText, QColor(0xd0, 0x58, 0x1e));
    row.name->setPalette(palette);
}

void LoraPicker::refresh() {
    for (const auto& row : m_rowList) markRow(row);

    m_loraMenu->clear();
    int fitting = 0;
    for (const auto& lora : m_loras) {
        QAction* action = m_loraMenu->addAction(displayName(lora));
        action->setData(lora.modelId);
        const QString problem = misfit(lora);
        const bool added =
            std::any_of(m_rowList.begin(), m_rowList.end(), [&](const Row& row) { return row.id == lora.modelId; });
        action->setEnabled(problem.isEmpty() && !added);
        action->setToolTip(!problem.isEmpty() ? problem : added ? tr("Already added") : describe(lora));
        if (problem.isEmpty()) ++fitting;
        connect(action, &QAction::triggered, this, [this, id = lora.modelId] { addLora(id); });
    }
    const bool full = static_cast<std::size_t>(m_rowList.size()) >= limits::kMaxLoras;
    m_add->setEnabled(fitting > 0 && !full);
    m_add->setToolTip(full ? tr("At most %1 LoRAs per request").arg(limits::kMaxLoras)
                           : tr("Add a LoRA installed on the server"));

    m_embeddingMenu->clear();
    for (const auto& embedding : m_embeddings) {
        QAction* action = m_embeddingMenu->addAction(embedding.modelId);
        const QString problem = misfit(embedding);
        action->setEnabled(problem.isEmpty());
        action->setToolTip(problem.isEmpty() ? tr("Insert the trigger word “%1” at the cursor").arg(embedding.modelId)
                                             : problem);
        connect(action, &QAction::triggered, this, [this, id = embedding.modelId] { emit embeddingChosen(id); });
    }
    m_insertEmbedding->setEnabled(!m_embeddings.isEmpty());
    m_insertEmbedding->setToolTip(m_embeddings.isEmpty() ? tr("No embeddings on this server")
                                                         : tr("Insert an embedding's trigger word into the prompt"));

    // The empty states say why nothing can be added, and how that changes.
    QString hint;
    if (m_listed && m_rowList.isEmpty()) {
        if (m_loras.isEmpty()) {
            hint =
                tr("No LoRAs yet. Load your own with POST /api/v1/models/load (a .safetensors URL or "
                   "Hugging Face id), or ask an admin to add shared ones; then Account ▸ Refresh.");
        } else if (fitting == 0) {
            hint = tr("None of the %n LoRA(s) on this server fits the selected model (%1).", nullptr,
                      static_cast<int>(m_loras.size()))
                       .arg(m_family);
        }
    }
    m_hint->setText(hint);
    m_hint->setVisible(!hint.isEmpty());
}

}  // namespace easel::ui
