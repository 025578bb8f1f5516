#include "ui/mask_canvas.h"

#include <gtest/gtest.h>

#include <QtTest/QTest>

#include "ui_test_support.h"

namespace easel::ui {
namespace {

QImage checkerboard(int w, int h) {
    QImage image(w, h, QImage::Format_RGB32);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) image.setPixel(x, y, ((x / 8 + y / 8) % 2) ? 0xff4060c0 : 0xffe0e0e0);
    }
    return image;
}

TEST(MaskCanvasTest, MaskHasTheInitImageSizeAndStartsEmpty) {
    MaskCanvas canvas;
    EXPECT_TRUE(canvas.mask().isNull());
    canvas.setImage(checkerboard(96, 64));
    EXPECT_EQ(canvas.mask().size(), QSize(96, 64));
    EXPECT_EQ(canvas.mask().format(), QImage::Format_Grayscale8);
    EXPECT_FALSE(canvas.hasMaskedPixels());
}

TEST(MaskCanvasTest, StrokePaintsWhiteOnlyWherePainted) {
    MaskCanvas canvas;
    canvas.setImage(checkerboard(64, 64));
    canvas.setBrushSize(8);
    canvas.paintStroke({10, 32}, {50, 32});
    const QImage mask = canvas.mask();
    EXPECT_EQ(qGray(mask.pixel(30, 32)), 255);
    EXPECT_EQ(qGray(mask.pixel(10, 33)), 255);
    EXPECT_EQ(qGray(mask.pixel(30, 10)), 0);
    EXPECT_EQ(qGray(mask.pixel(60, 32)), 0);
    // The eraser takes paint away again.
    canvas.setEraser(true);
    canvas.paintStroke({30, 32}, {30, 32});
    EXPECT_EQ(qGray(canvas.mask().pixel(30, 32)), 0);
    EXPECT_EQ(qGray(canvas.mask().pixel(12, 32)), 255);
}

TEST(MaskCanvasTest, InvertAndClear) {
    MaskCanvas canvas;
    canvas.setImage(checkerboard(32, 32));
    canvas.setBrushSize(4);
    canvas.paintStroke({16, 16}, {16, 16});
    canvas.invert();
    EXPECT_EQ(qGray(canvas.mask().pixel(16, 16)), 0);
    EXPECT_EQ(qGray(canvas.mask().pixel(0, 0)), 255);
    canvas.clear();
    EXPECT_FALSE(canvas.hasMaskedPixels());
}

TEST(MaskCanvasTest, MouseDragMapsWidgetToImageCoordinates) {
    MaskCanvas canvas;
    canvas.resize(400, 200);  // the 64x64 image is shown 200x200, centred: x offset 100, scale 3.125
    canvas.setImage(checkerboard(64, 64));
    canvas.setBrushSize(6);
    canvas.show();
    QTest::mousePress(&canvas, Qt::LeftButton, {}, QPoint(110, 100));
    QTest::mouseMove(&canvas, QPoint(290, 100));
    QTest::mouseRelease(&canvas, Qt::LeftButton, {}, QPoint(290, 100));
    EXPECT_EQ(canvas.toImage(QPointF(100, 0)), QPointF(0, 0));
    const QImage mask = canvas.mask();
    EXPECT_EQ(qGray(mask.pixel(32, 32)), 255);
    EXPECT_EQ(qGray(mask.pixel(32, 5)), 0);
    saveScreenshot(canvas, QStringLiteral("mask_canvas"));
}

}  // namespace
}  // namespace easel::ui
