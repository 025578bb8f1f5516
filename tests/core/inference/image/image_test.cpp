#include "inference/image/image.h"

#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/imgcodecs.hpp>

#include "temp_dir.h"

using namespace easel::inference;

namespace {

Image gradient(int w, int h) {
    Image img{w, h, std::vector<std::uint8_t>(static_cast<std::size_t>(w * h * 3))};
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            auto* p = &img.rgb[static_cast<std::size_t>((y * w + x) * 3)];
            p[0] = static_cast<std::uint8_t>(x * 255 / (w - 1));
            p[1] = static_cast<std::uint8_t>(y * 255 / (h - 1));
            p[2] = 77;
        }
    }
    return img;
}

}  // namespace

TEST(Png, RoundTripsPixelsAndParametersChunk) {
    const auto img = gradient(16, 8);
    const std::string params =
        "a red circle\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 16x8, "
        "Model: m";
    const auto png = encodePng(img, {{"parameters", params}});
    const auto back = decodeImage(png);
    EXPECT_EQ(back.width, 16);
    EXPECT_EQ(back.height, 8);
    EXPECT_EQ(back.rgb, img.rgb);  // lossless, RGB order kept
    EXPECT_EQ(readPngText(png).at("parameters"), params);
}

TEST(Png, NonLatinTextGoesIntoITXt) {
    const std::string params = "кот в шляпе ✨\nSteps: 5, Sampler: DDIM, CFG scale: 5, Seed: 1, Size: 8x8, Model: m";
    const auto png = encodePng(gradient(8, 8), {{"parameters", params}});
    EXPECT_NE(std::string(png.begin(), png.end()).find("iTXt"), std::string::npos);
    EXPECT_EQ(readPngText(png).at("parameters"), params);
    EXPECT_EQ(decodeImage(png).width, 8);  // still a valid PNG for decoders (CRC right)
}

TEST(Png, WriteAndReadFile) {
    easel::testing::TempDir dir;
    writePng(dir / "a.png", gradient(4, 4), {{"parameters", "x\nSteps: 1, Seed: 2"}});
    EXPECT_EQ(readImage(dir / "a.png").rgb, gradient(4, 4).rgb);
    EXPECT_THROW(readImage(dir / "missing.png"), ImageError);
}

TEST(ImageDecode, RejectsGarbageEmptyAndHugeImages) {
    EXPECT_THROW(decodeImage({}), ImageError);
    EXPECT_THROW(decodeImage({1, 2, 3, 4, 5}), ImageError);
    const auto png = encodePng(gradient(64, 64));
    EXPECT_THROW(decodeImage(png, 100), ImageError);
    EXPECT_THROW(readPngText({'G', 'I', 'F'}), ImageError);
    auto truncated = png;
    truncated.resize(40);
    EXPECT_THROW(decodeImage(truncated), ImageError);
}

TEST(ImageResize, ChangesSizeAndKeepsFlatColour) {
    Image flat{10, 10, std::vector<std::uint8_t>(300, 0)};
    for (std::size_t i = 0; i < flat.rgb.size(); i += 3) flat.rgb[i] = 200;
    const auto small = resizeImage(flat, 5, 4);
    EXPECT_EQ(small.width, 5);
    EXPECT_EQ(small.height, 4);
    EXPECT_EQ(small.rgb[0], 200);
    EXPECT_EQ(small.rgb[1], 0);
}

TEST(Infotext, FormatsAndParsesA1111Text) {
    Infotext t;
    t.prompt = "a (red:1.2) circle\nsecond line";
    t.negativePrompt = "blurry, ugly";
    t.fields = {{"Steps", "20"},
                {"Sampler", "DPM++ 2M Karras"},
                {"CFG scale", "7.5"},
                {"Seed", "123"},
                {"Size", "512x512"},
                {"Model", "sd15"},
                {"Denoising strength", "0.6"},
                {"Lora hashes", "a: 1, b: 2"}};
    const auto text = t.format();
    EXPECT_NE(
        text.find("\nNegative prompt: blurry, ugly\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 123"),
        std::string::npos);
    const auto back = Infotext::parse(text);
    EXPECT_EQ(back.prompt, t.prompt);
    EXPECT_EQ(back.negativePrompt, t.negativePrompt);
    EXPECT_EQ(back.fields, t.fields);
}

TEST(Infotext, ParsesTextWithoutNegativePrompt) {
    const auto t = Infotext::parse("hello\nSteps: 4, Sampler: Euler, Seed: 9");
    EXPECT_EQ(t.prompt, "hello");
    EXPECT_EQ(t.negativePrompt, "");
    EXPECT_EQ(t.fields.at("Seed"), "9");
}

TEST(ImageDecode, ReadsAWebPCanvasSizeWithinAThirtyByteHeader) {
    // RIFF....WEBPVP8X, then flags and canvas width - 1 / height - 1 as 24-bit little-endian at
    // bytes 24 and 27: 4096 x 3000, ending exactly at byte 29. (A 32-bit read once ran past it.)
    std::vector<std::uint8_t> webp{'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P',
                                   'V', 'P', '8', 'X', 10, 0, 0, 0, 0,   0,   0,   0};
    for (const std::uint32_t v : {4095u, 2999u}) {
        for (int i = 0; i < 3; ++i) webp.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    ASSERT_EQ(webp.size(), 30u);
    try {
        decodeImage(webp, 2048ull * 2048ull);
        FAIL() << "a 4096x3000 canvas was accepted";
    } catch (const ImageError& e) {
        EXPECT_NE(std::string(e.what()).find("4096x3000, larger than allowed"), std::string::npos) << e.what();
    }
}

TEST(ImageDecode, ADicomFileBehindAWebPHeaderIsRefusedNotHandedToGdcm) {
    // What the image fuzzer found: RIFF/WEBP at the start, DICOM's "DICM" at byte 128. OpenCV's WebP
    // check turned it down and its DICOM reader (GDCM) then aborted the whole process.
    const auto crash =
        std::filesystem::path(EASEL_SOURCE_DIR) / "tests" / "fuzz" / "regressions" / "image_decode_webp_dicom_abort";
    std::ifstream in(crash, std::ios::binary);
    ASSERT_TRUE(in) << crash;
    const std::vector<std::uint8_t> bytes(std::istreambuf_iterator<char>(in), {});
    ASSERT_GT(bytes.size(), 132u);
    EXPECT_THROW(decodeImage(bytes), ImageError);
}

TEST(ImageDecode, RefusesAHugeBitmapFromItsHeaderAlone) {
    // A ~100-byte PNG whose IHDR claims 40000x40000: refused before anything is allocated.
    auto png = encodePng(gradient(8, 8));
    const std::uint32_t side = 40000;
    for (int i = 0; i < 4; ++i) {
        png[16 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(side >> (24 - 8 * i));
        png[20 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(side >> (24 - 8 * i));
    }
    try {
        (void)decodeImage(png);
        FAIL() << "accepted";
    } catch (const ImageError& e) {
        EXPECT_NE(std::string(e.what()).find("40000x40000"), std::string::npos) << e.what();
    }
    // Formats outside PNG/JPEG/WebP/BMP are not handed to a decoder at all.
    const std::string tiff = "II*\\0\\x08\\0\\0\\0";
    EXPECT_THROW(decodeImage(std::vector<std::uint8_t>(tiff.begin(), tiff.end())), ImageError);
}

namespace {

// A 32x16 JPEG, red on the left half and blue on the right, with an EXIF Orientation tag.
std::vector<std::uint8_t> jpegWithOrientation(int orientation) {
    cv::Mat bgr(16, 32, CV_8UC3, cv::Scalar(0, 0, 255));
    bgr(cv::Rect(16, 0, 16, 16)).setTo(cv::Scalar(255, 0, 0));
    std::vector<std::uint8_t> jpeg;
    EXPECT_TRUE(cv::imencode(".jpg", bgr, jpeg, {cv::IMWRITE_JPEG_QUALITY, 95}));
    // APP1 "Exif": big-endian TIFF header, one IFD entry 0x0112 (Orientation), SHORT, count 1.
    const std::vector<std::uint8_t> tiff{'M',  'M',  0, 42, 0, 0, 0, 8, 0, 1,
                                         0x01, 0x12, 0, 3,  0, 0, 0, 1, 0, static_cast<std::uint8_t>(orientation),
                                         0,    0,    0, 0,  0, 0};
    std::vector<std::uint8_t> app1{0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
    app1.insert(app1.end(), tiff.begin(), tiff.end());
    const auto length = app1.size() - 2;
    app1[2] = static_cast<std::uint8_t>(length >> 8);
    app1[3] = static_cast<std::uint8_t>(length & 0xFF);
    jpeg.insert(jpeg.begin() + 2, app1.begin(), app1.end());  // right after SOI
    return jpeg;
}

std::array<int, 3> pixel(const Image& img, int x, int y) {
    const auto* p = &img.rgb[static_cast<std::size_t>((y * img.width + x) * 3)];
    return {p[0], p[1], p[2]};
}

void expectNearRgb(std::array<int, 3> got, std::array<int, 3> want) {
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[static_cast<std::size_t>(c)], want[static_cast<std::size_t>(c)], 30);
}

}  // namespace

TEST(ImageDecode, JpegExifOrientationIsApplied) {
    // 1: as stored.
    const auto upright = decodeImage(jpegWithOrientation(1));
    ASSERT_EQ(upright.width, 32);
    ASSERT_EQ(upright.height, 16);
    expectNearRgb(pixel(upright, 4, 8), {255, 0, 0});
    // 6: a phone held upright; shown turned 90 degrees clockwise, so the stored left half is on top.
    const auto turned = decodeImage(jpegWithOrientation(6));
    ASSERT_EQ(turned.width, 16);
    ASSERT_EQ(turned.height, 32);
    expectNearRgb(pixel(turned, 8, 4), {255, 0, 0});
    expectNearRgb(pixel(turned, 8, 28), {0, 0, 255});
    // 3: upside down, so the stored left half is on the right.
    const auto flipped = decodeImage(jpegWithOrientation(3));
    ASSERT_EQ(flipped.width, 32);
    expectNearRgb(pixel(flipped, 28, 8), {255, 0, 0});
}
