#include "ui/app_icon.h"

#include <QPainter>
#include <QPolygonF>
#include <QTransform>

namespace easel::ui {

QImage paintAppIcon(int size) {
    QImage image(size, size, QImage::Format_ARGB32_Premultiplied);
    image.fill(Qt::transparent);
    QPainter p(&image);
    p.setRenderHint(QPainter::Antialiasing);
    p.scale(size / 256.0, size / 256.0);  // the SVG's 256x256 view box

    const QColor wood(0x6b, 0x4a, 0x2b);
    QPen legs(wood, 14, Qt::SolidLine, Qt::RoundCap);
    p.setPen(legs);
    p.drawLine(QPointF(128, 20), QPointF(60, 240));
    p.drawLine(QPointF(128, 20), QPointF(196, 240));
    p.drawLine(QPointF(128, 20), QPointF(128, 236));

    p.setPen(QPen(QColor(0x3b, 0x3b, 0x3b), 6));
    p.setBrush(QColor(0xfb, 0xfa, 0xf6));
    p.drawRoundedRect(QRectF(40, 44, 176, 136), 8, 8);

    p.setPen(Qt::NoPen);
    p.setBrush(QColor(0x2f, 0x6f, 0xdb));
    p.drawEllipse(QPointF(92, 112), 34, 34);

    const QPolygonF star({{168, 72},
                          {180, 104},
                          {214, 104},
                          {186, 124},
                          {196, 156},
                          {168, 136},
                          {140, 156},
                          {150, 124},
                          {122, 104},
                          {156, 104}});
    QTransform t;
    t.translate(-8, 4);
    t.scale(0.95, 0.95);
    p.setBrush(QColor(0xe0, 0x40, 0x2f));
    p.drawPolygon(t.map(star));

    p.setBrush(wood);
    p.drawRoundedRect(QRectF(36, 176, 184, 12), 4, 4);
    return image;
}

QIcon appIcon() {
    QIcon icon;
    for (int size : {16, 24, 32, 48, 64, 128, 256}) icon.addPixmap(QPixmap::fromImage(paintAppIcon(size)));
    return icon;
}

}  // namespace easel::ui
