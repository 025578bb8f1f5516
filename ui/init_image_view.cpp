#include "ui/init_image_view.h"

#include <QApplication>
#include <QClipboard>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QImageReader>
#include <QKeyEvent>
#include <QMimeData>
#include <QPainter>

#include "ui/image_mime.h"

namespace easel::ui {

QImage loadImageFile(const QString& path) {
    QImageReader reader(path);
    reader.setAutoTransform(true);
    return reader.read();
}

QString imageFileFilter() {
    QStringList patterns;
    for (const auto& format : QImageReader::supportedImageFormats()) {
        patterns << QStringLiteral("*.") + QString::fromLatin1(format);
    }
    return QObject::tr("Images (%1)").arg(patterns.join(QLatin1Char(' ')));
}

InitImageView::InitImageView(QWidget* parent) : QWidget(parent) {
    setAcceptDrops(true);
    setFocusPolicy(Qt::StrongFocus);
    setMinimumSize(128, 128);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void InitImageView::setImage(const QImage& image) {
    m_image = image;
    update();
    emit imageChanged(m_image);
}

bool InitImageView::openFile() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open init image"), {}, imageFileFilter());
    if (path.isEmpty()) return false;
    const QImage image = loadImageFile(path);
    if (image.isNull()) return false;
    setImage(image);
    return true;
}

bool InitImageView::paste() {
    const QImage image = imageFromMime(QApplication::clipboard()->mimeData());
    if (image.isNull()) return false;
    setImage(image);
    return true;
}

void InitImageView::paintEvent(QPaintEvent*) {
    QPainter painter(this);
    painter.fillRect(rect(), palette().window().color().darker(110));
    if (hasFocus()) {
        painter.setPen(QPen(palette().highlight().color(), 2));
        painter.drawRect(rect().adjusted(1, 1, -1, -1));
    }
    if (m_image.isNull()) {
        painter.setPen(palette().text().color());
        painter.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap,
                         tr("Drop an init image here, paste it (Ctrl+V) or use Open…"));
        return;
    }
    QSizeF size = m_image.size();
    size.scale(QSizeF(width() - 8, height() - 8), Qt::KeepAspectRatio);
    const QRectF target(QPointF((width() - size.width()) / 2, (height() - size.height()) / 2), size);
    painter.setRenderHint(QPainter::SmoothPixmapTransform, m_image.width() >= target.width());
    painter.drawImage(target, m_image);
}

void InitImageView::keyPressEvent(QKeyEvent* event) {
    if (event->matches(QKeySequence::Paste)) {
        paste();
        return;
    }
    QWidget::keyPressEvent(event);
}

void InitImageView::dragEnterEvent(QDragEnterEvent* event) {
    if (hasImage(event->mimeData())) event->acceptProposedAction();
}

void InitImageView::dropEvent(QDropEvent* event) {
    const QImage image = imageFromMime(event->mimeData());
    if (image.isNull()) return;
    event->acceptProposedAction();
    setImage(image);
}

}  // namespace easel::ui
