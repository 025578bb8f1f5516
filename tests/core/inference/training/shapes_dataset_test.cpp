#include "inference/training/shapes_dataset.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "shape_detector.h"

using namespace easel::inference::training;

TEST(ShapesDataset, IsDeterministicAndVaried) {
    std::set<std::string> captions;
    for (std::uint64_t i = 0; i < 200; ++i) {
        const auto a = sampleScene(5, i);
        const auto b = sampleScene(5, i);
        EXPECT_EQ(a.caption(), b.caption());
        const cv::Mat ia = renderScene(a), ib = renderScene(b);
        EXPECT_EQ(cv::norm(ia, ib, cv::NORM_INF), 0.0);
        captions.insert(a.caption());
    }
    EXPECT_GT(captions.size(), 150u);
    EXPECT_NE(sampleScene(5, 0).caption() + sampleScene(5, 1).caption(),
              sampleScene(6, 0).caption() + sampleScene(6, 1).caption());
}

TEST(ShapesDataset, CaptionsParseBack) {
    for (std::uint64_t i = 0; i < 300; ++i) {
        const auto scene = sampleScene(11, i);
        const auto parsed = parseCaption(scene.caption());
        ASSERT_TRUE(parsed.has_value()) << scene.caption();
        EXPECT_EQ(parsed->caption(), scene.caption());
    }
    EXPECT_FALSE(parseCaption("a dog on a couch").has_value());
    EXPECT_FALSE(parseCaption("a large red circle at the top on a white background").has_value());
}

TEST(ShapesDataset, HeldOutCaptionsNeverAppearInTraining) {
    const auto& held = heldOutCaptions();
    EXPECT_GE(held.size(), 40u);
    const std::set<std::string> heldSet(held.begin(), held.end());
    EXPECT_EQ(heldSet.size(), held.size());
    for (std::uint64_t i = 0; i < 20000; ++i) ASSERT_EQ(heldSet.count(sampleScene(1234, i).caption()), 0u);
    for (const auto& c : held) ASSERT_TRUE(parseCaption(c).has_value()) << c;
}

TEST(ShapesDataset, RendersTheNamedColourAtTheNamedPlace) {
    Scene s;
    s.background = 0;  // white
    s.shapes.push_back({ShapeKind::Square, 2, ShapeSize::Large, Position::TopLeft});
    const cv::Mat img = renderScene(s, 64);
    ASSERT_EQ(img.type(), CV_8UC3);
    const auto centre = img.at<cv::Vec3b>(static_cast<int>(0.28 * 64), static_cast<int>(0.28 * 64));
    EXPECT_EQ(centre, cv::Vec3b(40, 70, 230));  // blue, in RGB order
    EXPECT_EQ(img.at<cv::Vec3b>(54, 54), cv::Vec3b(245, 245, 245));
    EXPECT_EQ(s.caption(), "a large blue square at the top left on a white background");
}

TEST(ShapesDataset, TwoShapesNeverTouch) {
    int pairs = 0;
    for (std::uint64_t i = 0; i < 3000; ++i) {
        const auto scene = sampleScene(1234, i);
        if (scene.shapes.size() != 2) continue;
        ++pairs;
        for (const auto& s : scene.shapes) EXPECT_NE(s.position, Position::Center) << scene.caption();
        const cv::Mat img = renderScene(scene, 64);
        const auto bg = kBackgrounds[static_cast<std::size_t>(scene.background)].rgb;
        cv::Mat foreground;
        cv::inRange(img, cv::Scalar(bg[0], bg[1], bg[2]), cv::Scalar(bg[0], bg[1], bg[2]), foreground);
        cv::bitwise_not(foreground, foreground);
        cv::Mat labels;
        // Two separate blobs, even counting the anti-aliased rims and diagonal neighbours.
        ASSERT_EQ(cv::connectedComponents(foreground, labels, 8) - 1, 2) << scene.caption();
    }
    EXPECT_GT(pairs, 700);
}

TEST(ShapesDataset, TheDetectorReadsEveryHeldOutRender) {
    // The built-in model's prompt-following test scores pictures with this detector: on the ground
    // truth it must be right every time, so that the score measures the model alone.
    for (const auto& caption : heldOutCaptions()) {
        const auto want = *parseCaption(caption);
        const cv::Mat m = renderScene(want, 64);
        const easel::inference::Image image{64, 64, std::vector<std::uint8_t>(m.data, m.data + m.total() * 3)};
        const auto d = easel::testing::detectShapes(image);
        EXPECT_EQ(d.background, want.background) << caption;
        ASSERT_EQ(d.shapes.size(), 1u) << caption;
        EXPECT_TRUE(easel::testing::matches(d.shapes[0], want.shapes[0]))
            << caption << ": read " << shapeName(d.shapes[0].kind) << ' '
            << kShapeColors[static_cast<std::size_t>(d.shapes[0].color)].name;
    }
}

TEST(ShapesDataset, HeartsAreDrawnAndReadButNeverInTheDataSet) {
    // The fine-tuning tests teach the built-in model hearts: the detector must read every render of
    // one, and the data set must never have shown one.
    for (std::uint64_t i = 0; i < 20000; ++i)
        ASSERT_EQ(sampleScene(1234, i).caption().find("heart"), std::string::npos);
    int read = 0;
    for (int color = 0; color < 8; ++color) {
        for (int p = 0; p < 5; ++p) {
            for (auto size : {ShapeSize::Large, ShapeSize::Small}) {
                Scene s;
                s.background = (color + p) % 3;
                s.shapes.push_back({ShapeKind::Heart, color, size, static_cast<Position>(p)});
                const auto parsed = parseCaption(s.caption());
                ASSERT_TRUE(parsed.has_value()) << s.caption();
                EXPECT_EQ(parsed->shapes[0].kind, ShapeKind::Heart);
                const cv::Mat m = renderScene(s, 64);
                const easel::inference::Image image{64, 64, std::vector<std::uint8_t>(m.data, m.data + m.total() * 3)};
                const auto d = easel::testing::detectShapes(image);
                ASSERT_EQ(d.shapes.size(), 1u) << s.caption();
                EXPECT_TRUE(easel::testing::matches(d.shapes[0], s.shapes[0]))
                    << s.caption() << ": read " << shapeName(d.shapes[0].kind);
                read += easel::testing::matches(d.shapes[0], s.shapes[0]) ? 1 : 0;
            }
        }
    }
    EXPECT_EQ(read, 80);
    // And no other shape of the data set reads as a heart (both sizes, every place).
    for (std::uint64_t i = 0; i < 400; ++i) {
        const auto scene = sampleScene(99, i);
        const cv::Mat m = renderScene(scene, 64);
        const easel::inference::Image image{64, 64, std::vector<std::uint8_t>(m.data, m.data + m.total() * 3)};
        for (const auto& d : easel::testing::detectShapes(image).shapes)
            EXPECT_NE(d.kind, ShapeKind::Heart) << scene.caption();
    }
}

TEST(ShapesDataset, ContactSheetForHumans) {
    // A grid of the first scenes, written to $EASEL_ARTIFACT_DIR for a person to look at.
    const char* dir = std::getenv("EASEL_ARTIFACT_DIR");
    if (dir == nullptr) GTEST_SKIP() << "set EASEL_ARTIFACT_DIR to write the contact sheet";
    cv::Mat sheet(64 * 4, 64 * 8, CV_8UC3);
    for (int i = 0; i < 32; ++i)
        renderScene(sampleScene(1234, static_cast<std::uint64_t>(i)))
            .copyTo(sheet(cv::Rect((i % 8) * 64, (i / 8) * 64, 64, 64)));
    cv::Mat bgr;
    cv::cvtColor(sheet, bgr, cv::COLOR_RGB2BGR);
    ASSERT_TRUE(cv::imwrite(std::string(dir) + "/shapes_contact_sheet.png", bgr));
}
