#include "ui/train_pane.h"

#include <QAction>
#include <QComboBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QImageReader>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QRandomGenerator>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>
#include <limits>

#include "ui/api_client.h"
#include "ui/dialog_presenter.h"
#include "ui/init_image_view.h"
#include "ui/loss_plot.h"
#include "ui/training_job.h"

namespace easel::ui {

namespace {

constexpr int kThumbnailSide = 88;
constexpr int kRandomSeed = -1;

QLabel* hint(const QString& text, QWidget* parent) {
    auto* label = new QLabel(text, parent);
    label->setWordWrap(true);
    label->setForegroundRole(QPalette::PlaceholderText);
    return label;
}

QStringList localFiles(const QMimeData* mime) {
    QStringList out;
    if (mime == nullptr) return out;
    for (const QUrl& url : mime->urls()) {
        if (url.isLocalFile()) out << url.toLocalFile();
    }
    return out;
}

}  // namespace

TrainPane::TrainPane(ApiClient* client, DialogPresenter* dialogs, QWidget* parent)
    : QWidget(parent), m_client(client), m_dialogs(dialogs), m_job(new TrainingJob(client, this)) {
    setObjectName(QStringLiteral("train_pane"));
    setAcceptDrops(true);
    auto* layout = new QHBoxLayout(this);
    layout->addWidget(buildSettings(), 3);
    layout->addWidget(buildProgress(), 2);

    connect(m_job, &TrainingJob::statusChanged, this, &TrainPane::showStatus);
    connect(m_job, &TrainingJob::modelReady, this, &TrainPane::onModelReady);
    connect(m_job, &TrainingJob::failed, this, &TrainPane::onFailed);
    connect(m_job, &TrainingJob::cancelled, this, &TrainPane::updateControls);
    methodChanged();
    imagesChanged();
    showStatus({});
    m_stage->setText(tr("Not started"));
    updateControls();
}

QWidget* TrainPane::buildSettings() {
    auto* column = new QWidget(this);
    auto* layout = new QVBoxLayout(column);
    layout->setContentsMargins(0, 0, 0, 0);

    auto* imagesBox = new QGroupBox(tr("Images of the subject"), column);
    auto* imagesLayout = new QVBoxLayout(imagesBox);
    m_images = new QListWidget(imagesBox);
    m_images->setObjectName(QStringLiteral("training_images"));
    m_images->setViewMode(QListView::IconMode);
    m_images->setIconSize(QSize(kThumbnailSide, kThumbnailSide));
    m_images->setGridSize(QSize(kThumbnailSide + 16, kThumbnailSide + fontMetrics().height() + 12));
    m_images->setResizeMode(QListView::Adjust);
    m_images->setMovement(QListView::Static);
    m_images->setTextElideMode(Qt::ElideMiddle);
    m_images->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_images->setMinimumHeight(kThumbnailSide + fontMetrics().height() + 24);
    auto* removeAction = new QAction(tr("Remove"), m_images);
    removeAction->setShortcut(QKeySequence::Delete);
    removeAction->setShortcutContext(Qt::WidgetShortcut);
    m_images->addAction(removeAction);
    connect(removeAction, &QAction::triggered, this, &TrainPane::removeSelectedImages);
    m_addImages = new QPushButton(tr("Add i&mages…"), imagesBox);
    m_addImages->setObjectName(QStringLiteral("add_images"));
    m_removeImages = new QPushButton(tr("Remove"), imagesBox);
    m_removeImages->setToolTip(tr("Remove the selected images (Delete)"));
    m_removeImages->setObjectName(QStringLiteral("remove_images"));
    m_imageCount = new QLabel(imagesBox);
    m_imageCount->setObjectName(QStringLiteral("image_count"));
    auto* imageButtons = new QHBoxLayout;
    imageButtons->addWidget(m_addImages);
    imageButtons->addWidget(m_removeImages);
    imageButtons->addStretch();
    imageButtons->addWidget(m_imageCount);
    imagesLayout->addWidget(m_images, 1);
    imagesLayout->addLayout(imageButtons);
    layout->addWidget(imagesBox, 1);

    auto* form = new QFormLayout;
    m_method = new QComboBox(column);
    m_method->setObjectName(QStringLiteral("train_method"));
    m_method->addItem(tr("DreamBooth (a new model)"), static_cast<int>(TrainingMethod::DreamBooth));
    m_method->addItem(tr("LoRA (a small adapter)"), static_cast<int>(TrainingMethod::LoRA));
    m_baseModel = new QComboBox(column);
    m_baseModel->setObjectName(QStringLiteral("base_model"));
    m_instancePrompt = new QLineEdit(column);
    m_instancePrompt->setObjectName(QStringLiteral("instance_prompt"));
    m_instancePrompt->setPlaceholderText(tr("a photo of zwx dog"));
    m_classPrompt = new QLineEdit(column);
    m_classPrompt->setObjectName(QStringLiteral("class_prompt"));
    m_classPrompt->setPlaceholderText(tr("a photo of a dog"));
    m_negativePrompt = new QLineEdit(column);
    m_negativePrompt->setObjectName(QStringLiteral("train_negative_prompt"));
    m_negativePrompt->setPlaceholderText(tr("LoRA only, optional"));
    m_steps = new QSpinBox(column);
    m_steps->setObjectName(QStringLiteral("train_steps"));
    m_steps->setRange(1, kMaxSteps);
    m_seed = new QSpinBox(column);
    m_seed->setObjectName(QStringLiteral("train_seed"));
    m_seed->setRange(kRandomSeed, std::numeric_limits<int>::max());
    m_seed->setSpecialValueText(tr("Random"));
    m_seed->setValue(kRandomSeed);
    form->addRow(tr("Met&hod"), m_method);
    form->addRow(tr("&Base model"), m_baseModel);
    form->addRow(tr("Instance &prompt"), m_instancePrompt);
    form->addRow(QString(), hint(tr("Name the subject with a rare token the model does not know yet (“zwx”), then "
                                    "use that token in your prompts."),
                                 column));
    form->addRow(tr("Class pr&ompt"), m_classPrompt);
    form->addRow(tr("Negati&ve prompt"), m_negativePrompt);
    form->addRow(tr("St&eps"), m_steps);
    form->addRow(tr("See&d"), m_seed);
    layout->addLayout(form);

    m_start = new QPushButton(tr("&Start training"), column);
    m_start->setObjectName(QStringLiteral("start_training"));
    m_start->setDefault(true);
    m_cancel = new QPushButton(tr("Cance&l training"), column);
    m_cancel->setObjectName(QStringLiteral("cancel_training"));
    auto* buttons = new QHBoxLayout;
    buttons->addStretch();
    buttons->addWidget(m_cancel);
    buttons->addWidget(m_start);
    layout->addLayout(buttons);

    connect(m_addImages, &QPushButton::clicked, this, &TrainPane::chooseImages);
    connect(m_removeImages, &QPushButton::clicked, this, &TrainPane::removeSelectedImages);
    connect(m_images, &QListWidget::itemSelectionChanged, this, &TrainPane::updateControls);
    connect(m_method, &QComboBox::currentIndexChanged, this, &TrainPane::methodChanged);
    connect(m_steps, &QSpinBox::valueChanged, this, [this] {
        if (!m_settingSteps) m_stepsEdited = true;
    });
    connect(m_start, &QPushButton::clicked, this, &TrainPane::startTraining);
    connect(m_cancel, &QPushButton::clicked, this, &TrainPane::cancelTraining);
    return column;
}

QWidget* TrainPane::buildProgress() {
    auto* box = new QGroupBox(tr("Progress"), this);
    auto* layout = new QVBoxLayout(box);
    m_stage = new QLabel(box);
    m_stage->setObjectName(QStringLiteral("training_stage"));
    QFont bold = m_stage->font();
    bold.setBold(true);
    m_stage->setFont(bold);
    m_progress = new QProgressBar(box);
    m_progress->setObjectName(QStringLiteral("training_progress"));
    m_detail = new QLabel(box);
    m_detail->setObjectName(QStringLiteral("training_detail"));
    m_detail->setWordWrap(true);
    m_detail->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_lossPlot = new LossPlot(box);
    layout->addWidget(m_stage);
    layout->addWidget(m_progress);
    layout->addWidget(m_detail);
    layout->addWidget(m_lossPlot, 1);
    return box;
}

void TrainPane::setModels(const QList<ModelInfo>& models) {
    const QString current = m_baseModel->currentData().toString();
    m_baseModel->clear();
    for (const auto& m : modelsOfCategory(models, QStringLiteral("stable_diffusion"))) {
        m_baseModel->addItem(m.isDefault ? tr("%1 (default)").arg(m.name) : m.name, m.modelId);
        m_baseModel->setItemData(m_baseModel->count() - 1, m.description, Qt::ToolTipRole);
        if (current.isEmpty() && m.isDefault) m_baseModel->setCurrentIndex(m_baseModel->count() - 1);
    }
    if (const int index = m_baseModel->findData(current); index >= 0) m_baseModel->setCurrentIndex(index);
}

void TrainPane::chooseImages() {
    const QStringList paths =
        QFileDialog::getOpenFileNames(this, tr("Images of the subject"), {}, tr("Images (*.png *.jpg *.jpeg *.webp)"));
    if (!paths.isEmpty()) addImageFiles(paths);
}

int TrainPane::addImageFiles(const QStringList& paths) {
    QStringList unreadable;
    int added = 0;
    for (const auto& path : paths) {
        const QImage image = loadImageFile(path);
        if (image.isNull()) {
            unreadable << QFileInfo(path).fileName();
            continue;
        }
        // PNG stays lossless; photos go as JPEG (see imageDataURL).
        const bool lossless = QImageReader::imageFormat(path) == "png";
        auto* item =
            new QListWidgetItem(QIcon(QPixmap::fromImage(image.scaled(kThumbnailSide, kThumbnailSide,
                                                                      Qt::KeepAspectRatio, Qt::SmoothTransformation))),
                                QFileInfo(path).fileName(), m_images);
        item->setData(Qt::UserRole, imageDataURL(image, lossless));
        item->setToolTip(tr("%1\n%2 × %3").arg(QDir::toNativeSeparators(path)).arg(image.width()).arg(image.height()));
        ++added;
    }
    imagesChanged();
    if (!unreadable.isEmpty()) {
        m_dialogs->showMessage(
            this, tr("Add images"),
            tr("These files are no images this app can read: %1.").arg(unreadable.join(QStringLiteral(", "))));
    }
    return added;
}

void TrainPane::dragEnterEvent(QDragEnterEvent* event) {
    if (!m_job->active() && !localFiles(event->mimeData()).isEmpty()) event->acceptProposedAction();
}

void TrainPane::dropEvent(QDropEvent* event) {
    const QStringList files = localFiles(event->mimeData());
    if (m_job->active() || files.isEmpty()) return;
    event->acceptProposedAction();
    addImageFiles(files);
}

void TrainPane::removeSelectedImages() {
    if (m_job->active()) return;
    qDeleteAll(m_images->selectedItems());
    imagesChanged();
}

QStringList TrainPane::imageDataURLs() const {
    QStringList out;
    for (int i = 0; i < m_images->count(); ++i) out << m_images->item(i)->data(Qt::UserRole).toString();
    return out;
}

void TrainPane::imagesChanged() {
    const int count = m_images->count();
    m_imageCount->setText(count == 0   ? tr("No images yet; 5 to 20 work best")
                          : count == 1 ? tr("1 image")
                                       : tr("%1 images").arg(count));
    if (!m_stepsEdited) {
        m_settingSteps = true;
        m_steps->setValue(std::clamp(count * kStepsPerImage, 1, kMaxSteps));
        m_settingSteps = false;
    }
    updateControls();
}

void TrainPane::methodChanged() { updateControls(); }

TrainingRequest TrainPane::request() const {
    TrainingRequest r;
    r.method = static_cast<TrainingMethod>(m_method->currentData().toInt());
    r.baseModelId = m_baseModel->currentData().toString();
    r.instancePrompt = m_instancePrompt->text().trimmed();
    r.classPrompt = m_classPrompt->text().trimmed();
    if (r.method == TrainingMethod::LoRA) r.negativePrompt = m_negativePrompt->text().trimmed();
    r.maxTrainSteps = m_steps->value();
    r.seed = m_seed->value() == kRandomSeed ? QRandomGenerator::global()->bounded(std::numeric_limits<int>::max())
                                            : m_seed->value();
    return r;
}

QString TrainPane::missingInput() const {
    const TrainingRequest r = request();
    if (m_images->count() == 0) return tr("Add some images of the subject first (Add images…); 5 to 20 work best.");
    if (r.baseModelId.isEmpty()) return tr("Pick a base model (the server's model list has not arrived yet).");
    if (r.instancePrompt.isEmpty())
        return tr("Type an instance prompt that names the subject with a rare token, e.g. “a photo of zwx dog”.");
    if (r.classPrompt.isEmpty())
        return tr(
            "Type a class prompt: the instance prompt without the token, e.g. “a photo "
            "of a dog”.");
    if (r.instancePrompt == r.classPrompt)
        return tr("The instance prompt needs a rare token (“zwx”) that the class prompt does not have.");
    return {};
}

void TrainPane::startTraining() {
    if (m_job->active()) return;
    if (const QString missing = missingInput(); !missing.isEmpty()) {
        m_dialogs->showMessage(this, tr("Train"), missing);
        return;
    }
    if (m_client->apiKey().isEmpty()) {
        m_dialogs->showMessage(this, tr("Train"), tr("Sign in first (Account ▸ Sign in…)."));
        return;
    }
    TrainingRequest r = request();
    r.images = imageDataURLs();
    m_job->start(r.method, trainingBody(r, m_client->apiKey()));
    updateControls();
}

void TrainPane::resumeRunning() {
    if (m_job->active() || m_client->apiKey().isEmpty()) return;
    m_client->trainings(this, [this](const ApiResult& r) {
        if (!r.ok() || m_job->active()) return;
        const QList<ListedTraining> listed = trainingsFromJSON(r.json);
        const ListedTraining* newest = nullptr;
        for (const auto& t : listed) {
            if (t.status.finished() || t.status.stage.isEmpty()) continue;
            if (newest == nullptr || t.status.trainingId > newest->status.trainingId) newest = &t;
        }
        if (newest != nullptr) m_job->resume(newest->method, newest->status);
    });
}

void TrainPane::cancelTraining() {
    m_job->cancel();
    updateControls();
}

void TrainPane::showStatus(const TrainingStatus& status) {
    QString stage = stageText(status);
    if (m_job->cancelling() && !status.finished()) stage = tr("%1 · cancelling…").arg(stage);
    m_stage->setText(stage);
    // Prior preservation draws the class images before the first step: the bar counts those first.
    const bool classImages = status.trainerStage == QLatin1String("class_images") && status.stageTotal > 0;
    const int total = std::max(classImages ? status.stageTotal : status.totalSteps, 0);
    const int step = classImages ? status.stageStep : status.step;
    if (total > 0) {
        m_progress->setRange(0, total);
        m_progress->setValue(status.pastSteps() ? total : std::clamp(step, 0, total));
        m_progress->setFormat(classImages ? tr("Class image %v / %m") : tr("Step %v / %m"));
    } else {
        m_progress->setRange(0, 1);
        m_progress->setValue(status.pastSteps() ? 1 : 0);
        m_progress->setFormat(QString());
    }
    QStringList detail;
    if (status.trainingId != 0) detail << tr("Training #%1").arg(status.trainingId);
    if (const QString eta = etaText(status.etaSeconds); !eta.isEmpty()) detail << eta;
    if (!status.modelId.isEmpty()) detail << tr("model %1").arg(status.modelId);
    if (status.failed() && !status.reason.isEmpty()) detail << status.reason;
    m_detail->setText(detail.join(QStringLiteral(" · ")));
    m_lossPlot->setPoints(status.loss, status.totalSteps);
    updateControls();
}

void TrainPane::onModelReady(const TrainingStatus& status) {
    updateControls();
    const auto method = m_job->method();
    // The window reloads the model list first, so the model is there when the user closes the box.
    emit modelReady(method, status.modelId);
    m_dialogs->showMessage(
        this, tr("Training finished"),
        method == TrainingMethod::LoRA
            ? tr("The LoRA “%1” is ready: add it under LoRAs in the generation tabs.").arg(status.modelId)
            : tr("The model “%1” is ready: pick it as the model in the generation tabs.").arg(status.modelId));
}

void TrainPane::onFailed(const ApiError& error) {
    updateControls();
    m_dialogs->showError(this, error);
}

void TrainPane::updateControls() {
    const bool running = m_job->active();
    // The image list stays enabled, so the thumbnails keep their colours while the run goes on.
    for (QWidget* w : std::initializer_list<QWidget*>{m_method, m_baseModel, m_instancePrompt, m_classPrompt, m_steps,
                                                      m_seed, m_addImages})
        w->setEnabled(!running);
    m_negativePrompt->setEnabled(!running && request().method == TrainingMethod::LoRA);
    m_start->setEnabled(!running);
    m_cancel->setEnabled(running && !m_job->cancelling());
    m_removeImages->setEnabled(!running && !m_images->selectedItems().isEmpty());
}

}  // namespace easel::ui
