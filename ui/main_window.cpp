#include "ui/main_window.h"

#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenuBar>
#include <QSettings>
#include <QShortcut>
#include <QStatusBar>
#include <QTabWidget>

#include "ui/account_pane.h"
#include "ui/curl_command.h"
#include "ui/dialog_presenter.h"
#include "ui/gallery_pane.h"
#include "ui/generation_queue.h"
#include "ui/image_to_image_pane.h"
#include "ui/infotext.h"
#include "ui/init_image_view.h"
#include "ui/inpaint_pane.h"
#include "ui/login_dialog.h"
#include "ui/lora_picker.h"
#include "ui/parameter_form.h"
#include "ui/queue_panel.h"
#include "ui/text_to_image_pane.h"
#include "ui/train_pane.h"

namespace easel::ui {

namespace {

QString settingsGroup(GenerationKind kind) { return endpointPath(kind).section(QLatin1Char('/'), -1); }

}  // namespace

MainWindow::MainWindow(ApiClient* client, DialogPresenter* dialogs, QWidget* parent)
    : QMainWindow(parent),
      m_client(client),
      m_dialogs(dialogs),
      m_queue(new GenerationQueue(client, this)),
      m_tabs(new QTabWidget(this)),
      m_text2img(new TextToImagePane(this)),
      m_img2img(new ImageToImagePane(this)),
      m_inpaint(new InpaintPane(this)),
      m_train(new TrainPane(client, dialogs, this)),
      m_gallery(new GalleryPane(client, dialogs, this)),
      m_account(new AccountPane(client, dialogs, this)),
      m_queuePanel(new QueuePanel(m_queue, this)),
      m_status(new QLabel(this)) {
    setObjectName(QStringLiteral("main_window"));
    setWindowTitle(QStringLiteral("Easel"));
    resize(1100, 720);
    m_tabs->setObjectName(QStringLiteral("tabs"));
    m_tabs->addTab(m_text2img, tr("&Text to image"));
    m_tabs->addTab(m_img2img, tr("&Image to image"));
    m_tabs->addTab(m_inpaint, tr("I&npaint"));
    m_tabs->addTab(m_train, tr("T&rain"));
    m_tabs->addTab(m_gallery, tr("&Gallery"));
    m_tabs->addTab(m_account, tr("&Account"));
    setCentralWidget(m_tabs);

    auto* dock = new QDockWidget(tr("Queue"), this);
    dock->setObjectName(QStringLiteral("queue_dock"));
    dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    dock->setWidget(m_queuePanel);
    addDockWidget(Qt::BottomDockWidgetArea, dock);
    statusBar()->addWidget(m_status, 1);
    buildMenus();

    for (GenerationPane* pane : {static_cast<GenerationPane*>(m_text2img), static_cast<GenerationPane*>(m_img2img),
                                 static_cast<GenerationPane*>(m_inpaint)}) {
        connect(pane, &GenerationPane::generateRequested, this, [this, pane] { generate(pane); });
        connect(pane, &GenerationPane::copyCurlRequested, this, [this, pane] {
            QApplication::clipboard()->setText(curlFor(pane));
            m_status->setText(tr("cURL command copied to the clipboard."));
        });
    }
    auto* escape = new QShortcut(QKeySequence(Qt::Key_Escape), this);
    connect(escape, &QShortcut::activated, m_queue, &GenerationQueue::cancelCurrent);
    connect(m_queue, &GenerationQueue::jobFinished, this, &MainWindow::onJobFinished);
    connect(m_queue, &GenerationQueue::jobsChanged, this, &MainWindow::showLivePreview);
    connect(m_queue, &GenerationQueue::jobCancelled, this,
            [this](const QueuedJob& job) { paneFor(static_cast<int>(job.kind))->clearPreview(); });
    connect(m_queue, &GenerationQueue::jobFailed, this, [this](const QueuedJob& job, const ApiError& error) {
        paneFor(static_cast<int>(job.kind))->clearPreview();
        m_dialogs->showError(this, error);
    });
    connect(m_gallery, &GalleryPane::useSettingsRequested, this, [this](const GenerationParams& p) {
        currentGenerationPane()->setParams(p);
        m_tabs->setCurrentWidget(currentGenerationPane());
    });
    connect(m_gallery, &GalleryPane::useAsInitRequested, this, [this](const QImage& image) {
        m_img2img->setInitImage(image);
        m_inpaint->setInitImage(image);
        m_tabs->setCurrentWidget(m_img2img);
    });
    connect(m_account, &AccountPane::accountLoaded, this, [this](const AccountInfo& a) {
        for (auto* pane : {static_cast<GenerationPane*>(m_text2img), static_cast<GenerationPane*>(m_img2img),
                           static_cast<GenerationPane*>(m_inpaint)}) {
            pane->form()->setMaxSteps(a.maxSteps);
        }
        m_status->setText(tr("Signed in as %1 · %2").arg(a.email, a.quotaText()));
    });
    connect(m_train, &TrainPane::modelReady, this, [this](TrainingMethod method, const QString& modelId) {
        reloadModels();
        m_status->setText(method == TrainingMethod::LoRA
                              ? tr("LoRA %1 trained; it is in the LoRA list.").arg(modelId)
                              : tr("Model %1 trained; it is in the model list.").arg(modelId));
    });
    connect(m_account, &AccountPane::accountDeleted, this, [this] { m_status->setText(tr("Account deleted.")); });
    connect(m_client, &ApiClient::healthChecked, this, [this](bool ok, const QString& detail) {
        m_status->setText(ok ? tr("Server %1 ready: %2").arg(m_client->baseUrl().toString(), detail)
                             : tr("Server unreachable: %1").arg(detail));
    });
    restoreSettings();
    m_status->setText(tr("Connecting to %1 …").arg(client->baseUrl().toString()));
    client->checkHealth();
    reloadFromServer();
}

void MainWindow::buildMenus() {
    auto* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open image parameters…"), QKeySequence::Open, this, [this] {
        const QString path =
            QFileDialog::getOpenFileName(this, tr("Open a PNG made by Easel or A1111"), {}, tr("PNG images (*.png)"));
        if (!path.isEmpty() && !openImageParameters(path)) {
            m_dialogs->showMessage(this, tr("Open image parameters"), tr("That image carries no parameters."));
        }
    });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    auto* account = menuBar()->addMenu(tr("A&ccount"));
    account->addAction(tr("&Sign in…"), this, &MainWindow::signIn);
    account->addAction(tr("Sign &out"), this, &MainWindow::signOut);
    account->addAction(tr("&Refresh"), QKeySequence::Refresh, this, &MainWindow::reloadFromServer);
}

void MainWindow::reloadFromServer() {
    if (!m_client->apiKey().isEmpty()) {
        reloadModels();
        m_gallery->showFirstPage();
        m_train->resumeRunning();
    }
    if (!m_client->sessionToken().isEmpty()) m_account->refresh();
}

void MainWindow::reloadModels() {
    m_client->models(this, [this](const ApiResult& r) {
        if (!r.ok()) return;
        m_models = modelsFromJSON(r.json);
        for (auto* pane : {static_cast<GenerationPane*>(m_text2img), static_cast<GenerationPane*>(m_img2img),
                           static_cast<GenerationPane*>(m_inpaint)}) {
            pane->form()->setModels(m_models);
        }
        m_train->setModels(m_models);
    });
}

GenerationPane* MainWindow::paneFor(int kind) const {
    switch (static_cast<GenerationKind>(kind)) {
        case GenerationKind::Text2Img:
            return m_text2img;
        case GenerationKind::Img2Img:
            return m_img2img;
        case GenerationKind::Inpaint:
            return m_inpaint;
    }
    return m_text2img;
}

GenerationPane* MainWindow::currentGenerationPane() const {
    if (auto* pane = qobject_cast<GenerationPane*>(m_tabs->currentWidget())) return pane;
    return m_text2img;
}

void MainWindow::generate(GenerationPane* pane) {
    if (const QString missing = pane->missingInput(); !missing.isEmpty()) {
        m_dialogs->showMessage(this, tr("Generate"), missing);
        return;
    }
    if (m_client->apiKey().isEmpty()) {
        m_dialogs->showMessage(this, tr("Generate"), tr("Sign in first (Account ▸ Sign in…)."));
        return;
    }
    const auto params = pane->params();
    m_queue->enqueue(pane->kind(), params, requestBody(pane->kind(), params, m_client->apiKey(), pane->images()));
}

QString MainWindow::curlFor(GenerationPane* pane) const {
    const auto body = requestBody(pane->kind(), pane->params(), m_client->apiKey(), pane->images());
    return curlCommand(m_client->baseUrl(), endpointPath(pane->kind()), body);
}

void MainWindow::onJobFinished(const QueuedJob& job) {
    GenerationPane* pane = paneFor(static_cast<int>(job.kind));
    const auto meta = paramsFromMeta(job.status.meta, job.params);
    for (auto* p : {static_cast<GenerationPane*>(m_text2img), static_cast<GenerationPane*>(m_img2img),
                    static_cast<GenerationPane*>(m_inpaint)}) {
        p->form()->setLastSeed(meta.seed);
    }
    auto images = std::make_shared<QList<QImage>>();
    const auto count = job.status.output.size();
    const QString caption = tr("#%1 · seed %2 · %3 s")
                                .arg(job.serverId)
                                .arg(meta.seed ? QString::number(*meta.seed) : tr("?"))
                                .arg(job.status.generationTime, 0, 'f', 1);
    for (const auto& url : job.status.output) {
        m_client->fetchImage(QUrl(url), this,
                             [pane, images, count, caption](const QByteArray& bytes, const auto& error) {
                                 images->append(error ? QImage() : QImage::fromData(bytes));
                                 if (images->size() != count) return;
                                 QList<QImage> ok;
                                 for (const auto& image : *images) {
                                     if (!image.isNull()) ok.append(image);
                                 }
                                 if (ok.isEmpty())
                                     pane->clearPreview();
                                 else
                                     pane->showResults(ok, caption);
                             });
    }
    m_gallery->showFirstPage();
    if (!m_client->sessionToken().isEmpty()) m_account->refresh();
}

void MainWindow::showLivePreview() {
    for (const auto& job : m_queue->activeJobs()) {
        if (job.state != QueuedJob::State::Running || job.status.preview.isNull()) continue;
        paneFor(static_cast<int>(job.kind))->showPreview(job.status.preview, tr("Preview · %1").arg(job.describe()));
        return;
    }
}

bool MainWindow::openImageParameters(const QString& path) {
    const QImage image = loadImageFile(path);
    GenerationPane* pane = currentGenerationPane();
    const auto params = paramsFromInfotext(image.text(QStringLiteral("parameters")), pane->params());
    if (!params) return false;
    pane->setParams(*params);
    m_tabs->setCurrentWidget(pane);
    // The image's LoRAs are now picker rows; one this server lacks, or one that does not fit the
    // model, is said out loud, not dropped.
    const LoraPicker* picker = pane->form()->loraPicker();
    QStringList problems;
    if (const QStringList missing = picker->unknownLoras(); !missing.isEmpty()) {
        problems << tr("This image was made with LoRAs this server does not have: %1.")
                        .arg(missing.join(QStringLiteral(", ")));
    }
    if (const QStringList misfits = picker->misfitLoras(); !misfits.isEmpty()) {
        problems << tr("These LoRAs were made for another kind of model than the selected one: %1.")
                        .arg(misfits.join(QStringLiteral(", ")));
    }
    if (!problems.isEmpty()) {
        problems << tr(
            "They are listed under LoRAs, marked ⚠; remove them (or have an admin load the missing "
            "ones, or pick a fitting model) before generating.");
        m_dialogs->showMessage(this, tr("Open image parameters"), problems.join(QLatin1Char(' ')));
    }
    m_status->setText(params->loras.isEmpty() ? tr("Parameters restored from %1.").arg(QFileInfo(path).fileName())
                                              : tr("Parameters restored from %1, with %n LoRA(s).", nullptr,
                                                   static_cast<int>(params->loras.size()))
                                                    .arg(QFileInfo(path).fileName()));
    return true;
}

void MainWindow::signIn() {
    LoginDialog dialog(m_client, this, m_bundledServer);
    if (dialog.exec() == QDialog::Accepted) reloadFromServer();
}

void MainWindow::signOut() {
    m_client->logout(this, [this](const ApiResult&) {
        m_client->setApiKey({});
        m_status->setText(tr("Signed out."));
    });
}

void MainWindow::saveSettings() const {
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState());
    settings.setValue(QStringLiteral("window/tab"), m_tabs->currentIndex());
    for (auto* pane : {static_cast<GenerationPane*>(m_text2img), static_cast<GenerationPane*>(m_img2img),
                       static_cast<GenerationPane*>(m_inpaint)}) {
        saveParams(settings, settingsGroup(pane->kind()), pane->params());
    }
}

void MainWindow::restoreSettings() {
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
    m_tabs->setCurrentIndex(settings.value(QStringLiteral("window/tab"), 0).toInt());
    for (auto* pane : {static_cast<GenerationPane*>(m_text2img), static_cast<GenerationPane*>(m_img2img),
                       static_cast<GenerationPane*>(m_inpaint)}) {
        pane->setParams(loadParams(settings, settingsGroup(pane->kind())));
    }
}

void MainWindow::closeEvent(QCloseEvent* event) {
    saveSettings();
    QMainWindow::closeEvent(event);
}

}  // namespace easel::ui
