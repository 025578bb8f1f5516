#pragma once
// The inpaint mask editor: the init image with the mask painted over it as a translucent overlay.
// The mask has the init image's size and is white where the model should repaint.

#include <QImage>
#include <QPointF>
#include <QRectF>
#include <QWidget>

namespace easel::ui {

class MaskCanvas : public QWidget {
    Q_OBJECT
public:
    explicit MaskCanvas(QWidget* parent = nullptr);

    // A new init image starts with an empty (all black) mask.
    void setImage(const QImage& image);
    QImage image() const { return m_image; }
    // Format_Grayscale8, 255 = repaint, 0 = keep; the init image's size (null without an image).
    QImage mask() const { return m_mask; }
    bool hasMaskedPixels() const;

    int brushSize() const { return m_brushSize; }  // diameter in image pixels
    void setBrushSize(int diameter);
    bool eraser() const { return m_eraser; }
    void setEraser(bool on) { m_eraser = on; }

    void clear();
    void invert();
    // One brush stroke in image coordinates (what mouse drags call; public so tests can paint).
    void paintStroke(QPointF from, QPointF to);
    // Where a widget position falls on the image (may be outside it).
    QPointF toImage(QPointF widgetPos) const;

    QSize sizeHint() const override { return {512, 512}; }

signals:
    void maskChanged();
    void imageDropped(const QImage& image);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void leaveEvent(QEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    QRectF targetRect() const;
    void rebuildOverlay();

    QImage m_image;
    QImage m_mask;
    QImage m_overlay;  // m_mask as translucent colour, kept in step with each stroke
    int m_brushSize = 16;
    bool m_eraser = false;
    bool m_painting = false;
    QPointF m_lastPoint;
    QPointF m_hover{-1, -1};  // widget coordinates of the brush outline; negative when outside
};

}  // namespace easel::ui
