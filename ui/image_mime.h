#pragma once
// Getting an image out of a drop or the clipboard: image data, or a local file URL that loads.

#include <QImage>
#include <QMimeData>

namespace easel::ui {

bool hasImage(const QMimeData* mime);
QImage imageFromMime(const QMimeData* mime);

}  // namespace easel::ui
