#include "ui/image_mime.h"

#include <QImageReader>
#include <QUrl>

namespace easel::ui {

namespace {

QImage firstLoadableFile(const QMimeData* mime) {
    for (const QUrl& url : mime->urls()) {
        if (!url.isLocalFile()) continue;
        QImageReader reader(url.toLocalFile());
        reader.setAutoTransform(true);
        QImage image = reader.read();
        if (!image.isNull()) return image;
    }
    return {};
}

}  // namespace

bool hasImage(const QMimeData* mime) {
    if (mime == nullptr) return false;
    if (mime->hasImage()) return true;
    for (const QUrl& url : mime->urls()) {
        if (url.isLocalFile() && !QImageReader::imageFormat(url.toLocalFile()).isEmpty()) return true;
    }
    return false;
}

QImage imageFromMime(const QMimeData* mime) {
    if (mime == nullptr) return {};
    if (mime->hasImage()) {
        const QImage image = qvariant_cast<QImage>(mime->imageData());
        if (!image.isNull()) return image;
    }
    return firstLoadableFile(mime);
}

}  // namespace easel::ui
