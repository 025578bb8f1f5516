#pragma once
// The img2img init image: shown scaled, chosen by file dialog, drag and drop, or paste (Ctrl+V while
// it has focus, or the Paste button).

#include <QImage>
#include <QWidget>

namespace easel::ui {

class InitImageView : public QWidget {
    Q_OBJECT
public:
    explicit InitImageView(QWidget* parent = nullptr);
    QImage image() const { return m_image; }
    void setImage(const QImage& image);

    // Open a file dialog / take the clipboard's image; false when nothing usable came.
    bool openFile();
    bool paste();

    QSize sizeHint() const override { return {384, 384}; }

signals:
    void imageChanged(const QImage& image);

protected:
    void paintEvent(QPaintEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    QImage m_image;
};

// Loads an image file with EXIF orientation applied; null when it cannot.
QImage loadImageFile(const QString& path);
// The file dialog filter for the formats Qt can read.
QString imageFileFilter();

}  // namespace easel::ui
