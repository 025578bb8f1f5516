#include "ui/gallery_pane.h"

#include <QApplication>
#include <QClipboard>
#include <QDialog>
#include <QDir>
#include <QFile>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QPushButton>
#include <QScrollArea>
#include <QVBoxLayout>
#include <algorithm>

#include "ui/api_client.h"
#include "ui/dialog_presenter.h"
#include "ui/infotext.h"

namespace easel::ui {

namespace {

constexpr int kThumbnail = 128;

QIcon thumbnail(const QImage& image) {
    // Nearest-neighbour for the built-in model's 64x64 images, so they stay crisp.
    const auto mode = image.width() < kThumbnail ? Qt::FastTransformation : Qt::SmoothTransformation;
    return QIcon(QPixmap::fromImage(image.scaled(kThumbnail, kThumbnail, Qt::KeepAspectRatio, mode)));
}

}  // namespace

GalleryPane::GalleryPane(ApiClient* client, DialogPresenter* dialogs, QWidget* parent)
    : QWidget(parent),
      m_client(client),
      m_dialogs(dialogs),
      m_list(new QListWidget(this)),
      m_details(new QLabel(this)),
      m_pageLabel(new QLabel(this)),
      m_previous(new QPushButton(tr("◀ Newer"), this)),
      m_next(new QPushButton(tr("Older ▶"), this)) {
    m_list->setObjectName(QStringLiteral("gallery"));
    m_list->setViewMode(QListView::IconMode);
    m_list->setIconSize({kThumbnail, kThumbnail});
    m_list->setGridSize({kThumbnail + 16, kThumbnail + 28});
    m_list->setResizeMode(QListView::Adjust);
    m_list->setMovement(QListView::Static);
    m_list->setSelectionMode(QAbstractItemView::SingleSelection);
    m_list->setContextMenuPolicy(Qt::ActionsContextMenu);
    m_details->setWordWrap(true);
    m_details->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_details->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    m_details->setMinimumWidth(240);

    auto* actions = new QVBoxLayout;
    const std::pair<QString, void (GalleryPane::*)()> named[] = {
        {tr("Open large"), &GalleryPane::openSelected},
        {tr("Save as PNG…"), nullptr},
        {tr("Copy image"), &GalleryPane::copySelectedImage},
        {tr("Copy seed"), &GalleryPane::copySelectedSeed},
        {tr("Use these settings"), &GalleryPane::useSelectedSettings},
        {tr("Use as init image"), &GalleryPane::useSelectedAsInit},
        {tr("Delete"), &GalleryPane::deleteSelected},
    };
    for (const auto& [label, slot] : named) {
        auto* button = new QPushButton(label, this);
        auto* action = new QAction(label, m_list);
        if (slot != nullptr) {
            connect(button, &QPushButton::clicked, this, slot);
            connect(action, &QAction::triggered, this, slot);
        } else {
            auto save = [this] {
                const QString path = m_dialogs->askSaveFile(this, tr("Save image"), QStringLiteral("easel.png"),
                                                            tr("PNG images (*.png)"));
                if (path.isEmpty() || selected() == nullptr) return;
                if (!m_bytes.contains(selected()->url)) {
                    m_dialogs->showMessage(this, tr("Image still loading"),
                                           tr("The image has not finished downloading yet; try again in a moment."));
                } else if (!saveSelected(path)) {
                    m_dialogs->showMessage(this, tr("Could not save"),
                                           tr("Easel could not write %1. Check that the folder exists and that you "
                                              "may write to it.")
                                               .arg(QDir::toNativeSeparators(path)));
                }
            };
            connect(button, &QPushButton::clicked, this, save);
            connect(action, &QAction::triggered, this, save);
        }
        m_list->addAction(action);
        actions->addWidget(button);
        m_actions.append(button);
    }
    actions->addWidget(m_details, 1);

    auto* paging = new QHBoxLayout;
    auto* reload = new QPushButton(tr("&Refresh"), this);
    paging->addWidget(m_previous);
    paging->addWidget(m_pageLabel, 1, Qt::AlignCenter);
    paging->addWidget(reload);
    paging->addWidget(m_next);
    auto* left = new QVBoxLayout;
    left->addWidget(m_list, 1);
    left->addLayout(paging);
    auto* layout = new QHBoxLayout(this);
    layout->addLayout(left, 3);
    layout->addLayout(actions, 1);

    connect(m_previous, &QPushButton::clicked, this, [this] { load(std::max(0, m_offset - m_pageSize)); });
    connect(m_next, &QPushButton::clicked, this, [this] { load(m_offset + m_pageSize); });
    connect(reload, &QPushButton::clicked, this, &GalleryPane::refresh);
    connect(m_list, &QListWidget::currentRowChanged, this, &GalleryPane::updateDetails);
    connect(m_list, &QListWidget::itemActivated, this, &GalleryPane::openSelected);
    updateDetails();
}

void GalleryPane::refresh() { load(m_offset); }
void GalleryPane::showFirstPage() { load(0); }
int GalleryPane::shownImages() const { return m_list->count(); }

void GalleryPane::load(int offset) {
    m_client->history(m_pageSize, offset, this, [this, offset](const ApiResult& r) {
        if (!r.ok()) {
            m_dialogs->showError(this, *r.error);
            return;
        }
        m_offset = offset;
        showPage(HistoryPage::fromJSON(r.json));
    });
}

void GalleryPane::showPage(const HistoryPage& page) {
    m_total = page.total;
    const int serial = ++m_pageSerial;
    auto items = page.items;
    std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.id > b.id; });
    m_entries.clear();
    m_list->clear();
    for (const auto& item : items) {
        for (const auto& url : item.output) {
            m_entries.append({item, url});
            auto* listItem = new QListWidgetItem(QStringLiteral("#%1").arg(item.id), m_list);
            listItem->setToolTip(item.meta.value(QStringLiteral("prompt")).toString());
            const int row = static_cast<int>(m_entries.size() - 1);
            auto apply = [this, row, url, serial](const QByteArray& bytes) {
                m_bytes.insert(url, bytes);
                if (serial != m_pageSerial) return;
                if (auto* it = m_list->item(row)) it->setIcon(thumbnail(QImage::fromData(bytes)));
            };
            if (m_bytes.contains(url)) {
                apply(m_bytes.value(url));
            } else {
                m_client->fetchImage(QUrl(url), this, [apply](const QByteArray& bytes, const auto& error) {
                    if (!error) apply(bytes);
                });
            }
        }
    }
    const int pages = std::max(1, (m_total + m_pageSize - 1) / m_pageSize);
    m_pageLabel->setText(
        tr("Page %1 of %2 · %n request(s)", nullptr, m_total).arg(m_offset / m_pageSize + 1).arg(pages));
    m_previous->setEnabled(m_offset > 0);
    m_next->setEnabled(m_offset + m_pageSize < m_total);
    if (m_list->count() > 0) m_list->setCurrentRow(0);
    updateDetails();
    emit pageLoaded();
}

const GalleryPane::Entry* GalleryPane::selected() const {
    const int row = m_list->currentRow();
    return row >= 0 && row < m_entries.size() ? &m_entries[row] : nullptr;
}

QImage GalleryPane::selectedImage() const {
    const Entry* e = selected();
    return e == nullptr ? QImage() : QImage::fromData(m_bytes.value(e->url));
}

void GalleryPane::selectImage(int row) { m_list->setCurrentRow(row); }

void GalleryPane::updateDetails() {
    const Entry* e = selected();
    for (auto* b : m_actions) b->setEnabled(e != nullptr);
    if (e == nullptr) {
        m_details->setText(m_entries.isEmpty() ? tr("No images yet. Generate one!") : QString());
        return;
    }
    const auto p = paramsFromMeta(e->item.meta);
    m_details->setText(tr("<b>#%1</b> · %2<br>%3")
                           .arg(e->item.id)
                           .arg(e->item.createdAt, infotextFor(p, p.seed.value_or(-1), p.modelId)
                                                       .toHtmlEscaped()
                                                       .replace(QLatin1Char('\n'), QLatin1String("<br>"))));
}

bool GalleryPane::saveSelected(const QString& path) {
    const Entry* e = selected();
    if (e == nullptr || !m_bytes.contains(e->url)) return false;
    QImage image = QImage::fromData(m_bytes.value(e->url));
    if (image.text(QStringLiteral("parameters")).isEmpty()) {
        // The server's PNG lacks the chunk: write the parameters we know, so the file can be reopened.
        const auto p = paramsFromMeta(e->item.meta);
        image.setText(QStringLiteral("parameters"), infotextFor(p, p.seed.value_or(-1), p.modelId));
        return image.save(path, "PNG");
    }
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(m_bytes.value(e->url)) == m_bytes.value(e->url).size();
}

void GalleryPane::copySelectedImage() {
    const QImage image = selectedImage();
    if (!image.isNull()) QApplication::clipboard()->setImage(image);
}

void GalleryPane::copySelectedSeed() {
    const Entry* e = selected();
    if (e == nullptr) return;
    const auto seed = paramsFromMeta(e->item.meta).seed;
    if (seed) QApplication::clipboard()->setText(QString::number(*seed));
}

void GalleryPane::useSelectedSettings() {
    if (const Entry* e = selected()) emit useSettingsRequested(paramsFromMeta(e->item.meta));
}

void GalleryPane::useSelectedAsInit() {
    const QImage image = selectedImage();
    if (!image.isNull()) emit useAsInitRequested(image);
}

void GalleryPane::deleteSelected() {
    const Entry* e = selected();
    if (e == nullptr) return;
    const qint64 id = e->item.id;
    if (!m_dialogs->confirm(this, tr("Delete request #%1").arg(id),
                            tr("Delete request #%1 and all its images from the server?").arg(id))) {
        return;
    }
    m_client->deleteHistory(id, this, [this](const ApiResult& r) {
        if (!r.ok()) m_dialogs->showError(this, *r.error);
        refresh();
    });
}

void GalleryPane::openSelected() {
    const QImage image = selectedImage();
    if (image.isNull()) return;
    auto* dialog = new QDialog(this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->setWindowTitle(tr("Request #%1").arg(selected()->item.id));
    auto* label = new QLabel(dialog);
    // Small images are enlarged to at least 512 px, nearest neighbour, so their pixels stay visible.
    const int scale = std::max(1, 512 / std::max(1, std::max(image.width(), image.height())));
    label->setPixmap(
        QPixmap::fromImage(image.scaled(image.size() * scale, Qt::KeepAspectRatio, Qt::FastTransformation)));
    auto* scroll = new QScrollArea(dialog);
    scroll->setWidget(label);
    scroll->setAlignment(Qt::AlignCenter);
    auto* layout = new QVBoxLayout(dialog);
    layout->addWidget(scroll);
    dialog->resize(std::min(1024, label->sizeHint().width() + 40), std::min(900, label->sizeHint().height() + 40));
    dialog->show();
}

}  // namespace easel::ui
