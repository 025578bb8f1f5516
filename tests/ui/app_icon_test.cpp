#include "ui/app_icon.h"

#include <gtest/gtest.h>

namespace easel::ui {
namespace {

// Channels within a few levels (anti-aliasing and premultiplication round).
void expectColor(const QImage& image, int x, int y, QColor want) {
    const QColor got = image.pixelColor(x, y);
    EXPECT_NEAR(got.red(), want.red(), 4) << x << "," << y;
    EXPECT_NEAR(got.green(), want.green(), 4) << x << "," << y;
    EXPECT_NEAR(got.blue(), want.blue(), 4) << x << "," << y;
    EXPECT_EQ(got.alpha(), 255) << x << "," << y;
}

TEST(AppIcon, PaintsTheSvgsDrawingAtEverySize) {
    for (int size : {32, 64, 256}) {
        const QImage image = paintAppIcon(size);
        ASSERT_EQ(image.size(), QSize(size, size));
        const double k = size / 256.0;
        auto at = [&](double v) { return static_cast<int>(v * k); };
        expectColor(image, at(92), at(112), QColor(0x2f, 0x6f, 0xdb));                   // the blue circle's centre
        expectColor(image, at(152), at(112), QColor(0xe0, 0x40, 0x2f));                  // the red star's centre
        expectColor(image, at(130), at(168), QColor(0xfb, 0xfa, 0xf6));                  // the canvas
        if (size >= 64) expectColor(image, at(129), at(210), QColor(0x6b, 0x4a, 0x2b));  // the middle leg
        EXPECT_EQ(image.pixelColor(at(10), at(10)).alpha(), 0);                          // transparent around the easel
    }
}

TEST(AppIcon, OffersTheCommonSizes) {
    const QIcon icon = appIcon();
    ASSERT_FALSE(icon.isNull());
    const auto sizes = icon.availableSizes();
    for (int size : {16, 32, 48, 256}) EXPECT_TRUE(sizes.contains(QSize(size, size))) << size;
    if (const QByteArray dir = qgetenv("EASEL_ARTIFACT_DIR"); !dir.isEmpty())
        EXPECT_TRUE(paintAppIcon(256).save(QString::fromLocal8Bit(dir) + QStringLiteral("/app_icon.png")));
}

}  // namespace
}  // namespace easel::ui
