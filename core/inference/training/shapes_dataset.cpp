#include "inference/training/shapes_dataset.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <sstream>

namespace easel::inference::training {
namespace {

// The data set's shapes; captions may also name a heart (parseCaption), which it never draws.
constexpr std::array<ShapeKind, 4> kKinds{ShapeKind::Circle, ShapeKind::Square, ShapeKind::Triangle, ShapeKind::Star};
constexpr std::array<ShapeKind, 5> kCaptionKinds{ShapeKind::Circle, ShapeKind::Square, ShapeKind::Triangle,
                                                 ShapeKind::Star, ShapeKind::Heart};
constexpr std::array<Position, 5> kPositions{Position::Center, Position::TopLeft, Position::TopRight,
                                             Position::BottomLeft, Position::BottomRight};

// Small shapes were 0.12 of the side (a star 15 px across at 64x64): after the autoencoder's 4x
// downsampling their points and corners blurred into blobs, so "small" is now 0.15.
double radiusFraction(ShapeSize s) { return s == ShapeSize::Large ? 0.22 : 0.15; }

std::vector<cv::Point> polygon(ShapeKind kind, cv::Point2d c, double r, int shift) {
    std::vector<cv::Point2d> pts;
    if (kind == ShapeKind::Triangle) {
        for (int i = 0; i < 3; ++i) {
            const double a = -CV_PI / 2 + i * 2 * CV_PI / 3;
            pts.emplace_back(c.x + r * std::cos(a), c.y + r * std::sin(a) + r * 0.2);
        }
    } else if (kind == ShapeKind::Star) {
        for (int i = 0; i < 10; ++i) {
            const double a = -CV_PI / 2 + i * CV_PI / 5;
            const double rr = i % 2 == 0 ? r : r * 0.45;
            pts.emplace_back(c.x + rr * std::cos(a), c.y + rr * std::sin(a));
        }
    } else if (kind == ShapeKind::Heart) {
        // The classic parametric heart (x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t),
        // scaled to 2r wide and centred on c by its bounding box: two lobes with a deep notch on
        // top and a point at the bottom.
        constexpr int kSteps = 96;
        for (int i = 0; i < kSteps; ++i) {
            const double t = i * 2 * CV_PI / kSteps;
            const double x = 16 * std::pow(std::sin(t), 3);
            const double y = 13 * std::cos(t) - 5 * std::cos(2 * t) - 2 * std::cos(3 * t) - std::cos(4 * t);
            // y spans about [-17, 12]: shift its middle to 0 and flip (image y grows downwards).
            pts.emplace_back(c.x + x * r / 16, c.y - (y + 2.5) * r / 16);
        }
    } else {  // square
        const double h = r * 0.85;
        pts = {{c.x - h, c.y - h}, {c.x + h, c.y - h}, {c.x + h, c.y + h}, {c.x - h, c.y + h}};
    }
    std::vector<cv::Point> out;
    const double scale = 1 << shift;
    for (const auto& p : pts)
        out.emplace_back(static_cast<int>(std::lround(p.x * scale)), static_cast<int>(std::lround(p.y * scale)));
    return out;
}

const std::set<std::string>& heldOutSet() {
    static const std::set<std::string> set(heldOutCaptions().begin(), heldOutCaptions().end());
    return set;
}

std::string lowerWords(const std::string& s) {
    std::string out;
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalpha(c) || ch == ' ')
            out.push_back(static_cast<char>(std::tolower(c)));
        else if (ch == ',')
            out.push_back(' ');
    }
    return out;
}

}  // namespace

std::string shapeName(ShapeKind kind) {
    switch (kind) {
        case ShapeKind::Circle:
            return "circle";
        case ShapeKind::Square:
            return "square";
        case ShapeKind::Triangle:
            return "triangle";
        case ShapeKind::Star:
            return "star";
        case ShapeKind::Heart:
            return "heart";
    }
    return "?";
}

std::string sizeName(ShapeSize size) { return size == ShapeSize::Large ? "large" : "small"; }

std::string positionPhrase(Position p) {
    switch (p) {
        case Position::Center:
            return "in the center";
        case Position::TopLeft:
            return "at the top left";
        case Position::TopRight:
            return "at the top right";
        case Position::BottomLeft:
            return "at the bottom left";
        case Position::BottomRight:
            return "at the bottom right";
    }
    return "?";
}

cv::Point2d positionCenter(Position p) {
    constexpr double lo = 0.28, hi = 0.72;
    switch (p) {
        case Position::Center:
            return {0.5, 0.5};
        case Position::TopLeft:
            return {lo, lo};
        case Position::TopRight:
            return {hi, lo};
        case Position::BottomLeft:
            return {lo, hi};
        case Position::BottomRight:
            return {hi, hi};
    }
    return {0.5, 0.5};
}

std::string Scene::caption() const {
    std::ostringstream out;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
        const auto& s = shapes[i];
        out << (i == 0 ? "a " : " and a ") << sizeName(s.size) << ' '
            << kShapeColors[static_cast<std::size_t>(s.color)].name << ' ' << shapeName(s.kind) << ' '
            << positionPhrase(s.position);
    }
    out << " on a " << kBackgrounds[static_cast<std::size_t>(background)].name << " background";
    return out.str();
}

cv::Mat renderScene(const Scene& scene, int size) {
    constexpr int kSuper = 4;  // draw large, then area-downsample: clean anti-aliased edges
    const int big = size * kSuper;
    const auto bg = kBackgrounds[static_cast<std::size_t>(scene.background)].rgb;
    cv::Mat canvas(big, big, CV_8UC3, cv::Scalar(bg[0], bg[1], bg[2]));
    for (const auto& s : scene.shapes) {
        const auto rgb = kShapeColors[static_cast<std::size_t>(s.color)].rgb;
        const cv::Scalar color(rgb[0], rgb[1], rgb[2]);
        const auto c = positionCenter(s.position) * big;
        const double r = radiusFraction(s.size) * big;
        if (s.kind == ShapeKind::Circle) {
            cv::circle(canvas, cv::Point(static_cast<int>(c.x), static_cast<int>(c.y)), static_cast<int>(r), color,
                       cv::FILLED, cv::LINE_8);
        } else {
            const auto pts = polygon(s.kind, c, r, 0);
            cv::fillPoly(canvas, std::vector<std::vector<cv::Point>>{pts}, color, cv::LINE_8);
        }
    }
    cv::Mat out;
    cv::resize(canvas, out, cv::Size(size, size), 0, 0, cv::INTER_AREA);
    return out;
}

Scene sampleScene(std::uint64_t seed, std::uint64_t index) {
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + index);
    for (;;) {
        Scene scene;
        scene.background = static_cast<int>(rng() % kBackgrounds.size());
        const int count = rng() % 3 == 0 ? 2 : 1;
        // Two shapes go to corners only: a large shape in the center would touch a small one in a corner.
        std::vector<Position> free(kPositions.begin() + (count == 2 ? 1 : 0), kPositions.end());
        for (int i = 0; i < count; ++i) {
            ShapeSpec s;
            s.kind = kKinds[rng() % kKinds.size()];
            s.color = static_cast<int>(rng() % kShapeColors.size());
            // Two shapes: the second is small, so that neighbours never touch.
            s.size = (i == 1 || rng() % 2 == 0) ? ShapeSize::Small : ShapeSize::Large;
            if (count == 2 && i == 0) s.size = ShapeSize::Large;
            const auto pick = rng() % free.size();
            s.position = free[pick];
            free.erase(free.begin() + static_cast<std::ptrdiff_t>(pick));
            // No shape in the background's own colour (white/black/gray are not shape colours).
            scene.shapes.push_back(s);
        }
        if (count == 2 && scene.shapes[0].color == scene.shapes[1].color) continue;
        if (count == 1 && heldOutSet().count(scene.caption())) continue;
        return scene;
    }
}

std::optional<Scene> parseCaption(const std::string& caption) {
    std::istringstream in(lowerWords(caption));
    std::vector<std::string> w;
    for (std::string word; in >> word;) w.push_back(word);
    Scene scene;
    std::size_t i = 0;
    auto expect = [&](const std::string& word) { return i < w.size() && w[i] == word ? (++i, true) : false; };
    auto parseShape = [&]() -> bool {
        if (!expect("a")) return false;
        ShapeSpec s;
        if (expect("large"))
            s.size = ShapeSize::Large;
        else if (expect("small"))
            s.size = ShapeSize::Small;
        if (i >= w.size()) return false;
        const auto color =
            std::find_if(kShapeColors.begin(), kShapeColors.end(), [&](const NamedColor& c) { return w[i] == c.name; });
        if (color == kShapeColors.end()) return false;
        s.color = static_cast<int>(color - kShapeColors.begin());
        ++i;
        const auto kind = std::find_if(kCaptionKinds.begin(), kCaptionKinds.end(),
                                       [&](ShapeKind k) { return i < w.size() && w[i] == shapeName(k); });
        if (kind == kCaptionKinds.end()) return false;
        s.kind = *kind;
        ++i;
        bool found = false;
        for (auto p : kPositions) {
            std::istringstream phrase(positionPhrase(p));
            std::vector<std::string> pw;
            for (std::string x; phrase >> x;) pw.push_back(x);
            if (i + pw.size() <= w.size() &&
                std::equal(pw.begin(), pw.end(), w.begin() + static_cast<std::ptrdiff_t>(i))) {
                s.position = p;
                i += pw.size();
                found = true;
                break;
            }
        }
        if (!found) return false;
        scene.shapes.push_back(s);
        return true;
    };
    if (!parseShape()) return std::nullopt;
    if (expect("and") && !parseShape()) return std::nullopt;
    if (!expect("on") || !expect("a") || i >= w.size()) return std::nullopt;
    const auto bg =
        std::find_if(kBackgrounds.begin(), kBackgrounds.end(), [&](const NamedColor& c) { return w[i] == c.name; });
    if (bg == kBackgrounds.end()) return std::nullopt;
    scene.background = static_cast<int>(bg - kBackgrounds.begin());
    ++i;
    if (!expect("background") || i != w.size()) return std::nullopt;
    return scene;
}

const std::vector<std::string>& heldOutCaptions() {
    // 48 single-shape scenes (every colour, shape, position and background is still seen in
    // training, only these combinations are not). Chosen by a fixed rule, not by hand.
    static const std::vector<std::string> captions = [] {
        std::vector<std::string> out;
        for (int k = 0; k < 48; ++k) {
            Scene s;
            ShapeSpec sh;
            sh.color = k % 8;
            sh.kind = kKinds[static_cast<std::size_t>((k / 8 + k) % 4)];
            sh.position = kPositions[static_cast<std::size_t>((k * 3) % 5)];
            sh.size = k % 2 == 0 ? ShapeSize::Large : ShapeSize::Small;
            s.shapes.push_back(sh);
            s.background = (k / 2) % 3;
            out.push_back(s.caption());
        }
        return out;
    }();
    return captions;
}

}  // namespace easel::inference::training
