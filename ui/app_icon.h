#pragma once
// Easel's window icon, painted with QPainter from the same geometry as resources/icons/easel.svg, so
// that it shows without Qt's SVG plugin (not installed on a plain Debian Qt 6 setup).

#include <QIcon>
#include <QImage>

namespace easel::ui {

// The icon at one size (square, transparent outside the drawing).
QImage paintAppIcon(int size);
// Every common size (16 to 256 px) in one QIcon.
QIcon appIcon();

}  // namespace easel::ui
