#include "ui/mask_canvas.h"

#include <QDragEnterEvent>
#include <QMimeData>
#include <QMouseEvent>
#include <QPainter>

#include "ui/image_mime.h"

namespace easel::ui {

namespace {

const QColor kOverlayColour(255, 48, 96, 120);

void strokeOn(QImage& target, QPointF from, QPointF to, int diameter, const QColor& colour) {
    QPainter painter(&target);
    // Hard edges: the mask the server receives is exactly what the overlay shows.
    painter.setRenderHint(QPainter::Antialiasing, false);
    painter.setCompositionMode(QPainter::CompositionMode_Source);
    painter.setPen(QPen(colour, diameter, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin));
    if (from == to) {
        painter.setPen(Qt::NoPen);
        painter.setBrush(colour);
        painter.drawEllipse(from, diameter / 2.0, diameter / 2.0);
    } else {
        painter.drawLine(from, to);
    }
}

}  // namespace

MaskCanvas::MaskCanvas(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    setAcceptDrops(true);
    setMinimumSize(128, 128);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    setCursor(Qt::CrossCursor);
}

void MaskCanvas::setImage(const QImage& image) {
    m_image = image.convertToFormat(QImage::Format_ARGB32_Premultiplied);
    m_mask = QImage(m_image.size(), QImage::Format_Grayscale8);
    m_mask.fill(0);
    rebuildOverlay();
    update();
    emit maskChanged();
}

bool MaskCanvas::hasMaskedPixels() const {
    for (int y = 0; y < m_mask.height(); ++y) {
        const uchar* line = m_mask.constScanLine(y);
        for (int x = 0; x < m_mask.width(); ++x) {
            if (line[x] != 0) return true;
        }
    }
    return false;
}

void MaskCanvas::setBrushSize(int diameter) {
    m_brushSize = std::max(1, diameter);
    update();
}

void MaskCanvas::clear() {
    if (m_mask.isNull()) return;
    m_mask.fill(0);
    rebuildOverlay();
    update();
    emit maskChanged();
}

void MaskCanvas::invert() {
    if (m_mask.isNull()) return;
    m_mask.invertPixels();
    rebuildOverlay();
    update();
    emit maskChanged();
}

void MaskCanvas::paintStroke(QPointF from, QPointF to) {
    if (m_mask.isNull()) return;
    strokeOn(m_mask, from, to, m_brushSize, m_eraser ? QColor(Qt::black) : QColor(Qt::white));
    strokeOn(m_overlay, from, to, m_brushSize, m_eraser ? QColor(Qt::transparent) : kOverlayColour);
    update();
    emit maskChanged();
}

void MaskCanvas::rebuildOverlay() {
    m_overlay = QImage(m_mask.size(), QImage::Format_ARGB32_Premultiplied);
    m_overlay.fill(Qt::transparent);
    const QRgb colour = qPremultiply(kOverlayColour.rgba());
    for (int y = 0; y < m_mask.height(); ++y) {
        const uchar* in = m_mask.constScanLine(y);
        auto* out = reinterpret_cast<QRgb*>(m_overlay.scanLine(y));
        for (int x = 0; x < m_mask.width(); ++x) {
            if (in[x] >= 128) out[x] = colour;
        }
    }
}

QRectF MaskCanvas::targetRect() const {
    if (m_image.isNull()) return {};
    QSizeF size = m_image.size();
    size.scale(QSizeF(width(), height()), Qt::KeepAspectRatio);
    return {QPointF((width() - size.width()) / 2, (height() - size.height()) / 2), size};
}

QPointF MaskCanvas::toImage(QPointF widgetPos) const {
    const QRectF target = targetRect();
    if (target.isEmpty()) return {};
    return {(widgetPos.x() - target.left()) * m_image.width() / target.width(),
            (widgetPos.y() - target.top()) * m_image.height() / target.height()};
}

void MaskCanvas::paintEvent(QPaintEvent*) {
    QPainter painter(this);
    painter.fillRect(rect(), palette().window().color().darker(110));
    if (m_image.isNull()) {
        painter.setPen(palette().text().color());
        painter.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap,
                         tr("Drop an image here, paste it (Ctrl+V) or use Open…\nthen paint where the model should "
                            "repaint."));
        return;
    }
    const QRectF target = targetRect();
    // Small images (the built-in model's 64x64) are shown with visible pixels, not blurred.
    painter.setRenderHint(QPainter::SmoothPixmapTransform, m_image.width() >= target.width());
    painter.drawImage(target, m_image);
    painter.drawImage(target, m_overlay);
    if (m_hover.x() >= 0) {
        const double scale = target.width() / m_image.width();
        const double radius = m_brushSize * scale / 2;
        painter.setRenderHint(QPainter::Antialiasing);
        painter.setBrush(Qt::NoBrush);
        painter.setPen(QPen(Qt::black, 1));
        painter.drawEllipse(m_hover, radius, radius);
        painter.setPen(QPen(Qt::white, 1, Qt::DashLine));
        painter.drawEllipse(m_hover, radius, radius);
    }
}

void MaskCanvas::mousePressEvent(QMouseEvent* event) {
    if (event->button() != Qt::LeftButton || m_image.isNull()) return;
    m_painting = true;
    m_lastPoint = toImage(event->position());
    paintStroke(m_lastPoint, m_lastPoint);
}

void MaskCanvas::mouseMoveEvent(QMouseEvent* event) {
    m_hover = event->position();
    if (m_painting) {
        const QPointF point = toImage(event->position());
        paintStroke(m_lastPoint, point);
        m_lastPoint = point;
    } else {
        update();
    }
}

void MaskCanvas::mouseReleaseEvent(QMouseEvent* event) {
    if (event->button() == Qt::LeftButton) m_painting = false;
}

void MaskCanvas::leaveEvent(QEvent*) {
    m_hover = {-1, -1};
    update();
}

void MaskCanvas::dragEnterEvent(QDragEnterEvent* event) {
    if (hasImage(event->mimeData())) event->acceptProposedAction();
}

void MaskCanvas::dropEvent(QDropEvent* event) {
    const QImage image = imageFromMime(event->mimeData());
    if (image.isNull()) return;
    event->acceptProposedAction();
    emit imageDropped(image);
}

}  // namespace easel::ui
