#pragma once
// A classical detector for the built-in model's world, used to check what a generated picture
// shows: background colour from the border, colour segmentation against it, then per blob the
// nearest named colour, a shape class from contour geometry (solidity, extent) and the nearest
// named position of its centroid.

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "inference/image/image.h"
#include "inference/training/shapes_dataset.h"

namespace easel::testing {

struct DetectedShape {
    inference::training::ShapeKind kind;
    int color = 0;
    inference::training::Position position;
    double area = 0;
};

struct Detection {
    int background = 0;
    std::vector<DetectedShape> shapes;  // largest first
    cv::Mat foreground;                 // CV_8U mask, 255 = not background
};

inline double colorDistance(const cv::Vec3d& a, const std::array<unsigned char, 3>& b) {
    return std::sqrt(std::pow(a[0] - b[0], 2) + std::pow(a[1] - b[1], 2) + std::pow(a[2] - b[2], 2));
}

template <std::size_t N>
int nearestColor(const cv::Vec3d& c, const std::array<inference::training::NamedColor, N>& palette) {
    int best = 0;
    for (std::size_t i = 1; i < N; ++i) {
        if (colorDistance(c, palette[i].rgb) < colorDistance(c, palette[static_cast<std::size_t>(best)].rgb))
            best = static_cast<int>(i);
    }
    return best;
}

// What tells a heart from the data set's shapes: a notch between two lobes on top (the deepest dent of
// the contour in the upper 45% of its bounding box: its depth over sqrt(area) and where it lies) and a
// point at the bottom (the width of the row at 85% of the height over the widest row).
struct HeartTraits {
    double notchDepth = 0;  // / sqrt(area)
    double notchX = 0.5;    // 0 = box left, 1 = box right
    double bottomWidth = 1;
};

inline HeartTraits heartTraits(const std::vector<cv::Point>& contour, double area) {
    HeartTraits h;
    if (contour.size() < 8 || area <= 0) return h;
    std::vector<int> hullIdx;
    cv::convexHull(contour, hullIdx, false, false);
    if (hullIdx.size() < 3) return h;
    std::vector<cv::Vec4i> defects;
    try {
        cv::convexityDefects(contour, hullIdx, defects);
    } catch (const cv::Exception&) {
        return h;  // a self-intersecting hull order on degenerate blobs
    }
    const auto box = cv::boundingRect(contour);
    double deepest = 0;
    for (const auto& d : defects) {
        const double depth = d[3] / 256.0;
        const auto& at = contour[static_cast<std::size_t>(d[2])];
        if (depth > deepest && at.y < box.y + box.height * 0.45) {
            deepest = depth;
            h.notchX = (at.x - box.x + 0.5) / std::max(1, box.width);
        }
    }
    h.notchDepth = deepest / std::sqrt(area);
    cv::Mat blob = cv::Mat::zeros(box.height, box.width, CV_8U);
    cv::drawContours(blob, std::vector<std::vector<cv::Point>>{contour}, 0, 255, cv::FILLED, cv::LINE_8, cv::noArray(),
                     0, cv::Point(-box.x, -box.y));
    int widest = 1;
    for (int y = 0; y < blob.rows; ++y) widest = std::max(widest, cv::countNonZero(blob.row(y)));
    const int row = std::min(blob.rows - 1, static_cast<int>(std::lround(0.85 * (blob.rows - 1))));
    h.bottomWidth = static_cast<double>(cv::countNonZero(blob.row(row))) / widest;
    return h;
}

// A heart: a notch on top, near the middle, and a point at the bottom. Circles, squares and triangles
// have no notch deeper than a pixel or so, and circles, squares and (apex-up) triangles are wide at
// 85% of their height (circles ~0.7); stars are told by solidity first.
inline bool isHeart(const std::vector<cv::Point>& contour, double area) {
    const auto h = heartTraits(contour, area);
    return h.notchDepth > 0.06 && h.notchX > 0.2 && h.notchX < 0.8 && h.bottomWidth < 0.55;
}

inline Detection detectShapes(const inference::Image& image) {
    using namespace inference::training;
    cv::Mat rgb(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.rgb.data()));
    Detection d;
    // Background: the median of the border pixels.
    std::vector<cv::Vec3b> border;
    for (int x = 0; x < rgb.cols; ++x) {
        border.push_back(rgb.at<cv::Vec3b>(0, x));
        border.push_back(rgb.at<cv::Vec3b>(rgb.rows - 1, x));
    }
    for (int y = 0; y < rgb.rows; ++y) {
        border.push_back(rgb.at<cv::Vec3b>(y, 0));
        border.push_back(rgb.at<cv::Vec3b>(y, rgb.cols - 1));
    }
    cv::Vec3d bg;
    for (int c = 0; c < 3; ++c) {
        std::vector<int> v;
        for (const auto& p : border) v.push_back(p[c]);
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
        bg[c] = v[v.size() / 2];
    }
    d.background = nearestColor(bg, kBackgrounds);
    d.foreground = cv::Mat::zeros(rgb.size(), CV_8U);
    for (int y = 0; y < rgb.rows; ++y) {
        for (int x = 0; x < rgb.cols; ++x) {
            const auto p = rgb.at<cv::Vec3b>(y, x);
            const double dist =
                std::sqrt(std::pow(p[0] - bg[0], 2) + std::pow(p[1] - bg[1], 2) + std::pow(p[2] - bg[2], 2));
            if (dist > 70) d.foreground.at<std::uint8_t>(y, x) = 255;
        }
    }
    cv::morphologyEx(d.foreground, d.foreground, cv::MORPH_OPEN, cv::getStructuringElement(cv::MORPH_ELLIPSE, {3, 3}));
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(d.foreground.clone(), contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
    const double side = rgb.cols;
    for (const auto& contour : contours) {
        const double area = cv::contourArea(contour);
        if (area < 0.004 * side * side) continue;  // specks
        cv::Mat blob = cv::Mat::zeros(rgb.size(), CV_8U);
        cv::drawContours(blob, std::vector<std::vector<cv::Point>>{contour}, 0, 255, cv::FILLED);
        // Colour from the blob's interior (erode away the anti-aliased rim).
        cv::Mat inner;
        cv::erode(blob, inner, cv::getStructuringElement(cv::MORPH_ELLIPSE, {3, 3}));
        if (cv::countNonZero(inner) < 4) inner = blob;
        const auto mean = cv::mean(rgb, inner);
        DetectedShape s;
        s.area = area;
        s.color = nearestColor(cv::Vec3d(mean[0], mean[1], mean[2]), kShapeColors);
        std::vector<cv::Point> hull;
        cv::convexHull(contour, hull);
        const double solidity = area / std::max(1.0, cv::contourArea(hull));
        const auto rect = cv::minAreaRect(contour);
        const double extent = area / std::max(1.0, static_cast<double>(rect.size.area()));
        if (solidity < 0.8) {
            s.kind = ShapeKind::Star;
        } else if (isHeart(contour, area)) {
            s.kind = ShapeKind::Heart;
        } else if (extent > 0.88) {
            s.kind = ShapeKind::Square;
        } else if (extent < 0.66) {
            s.kind = ShapeKind::Triangle;
        } else {
            s.kind = ShapeKind::Circle;
        }
        const auto m = cv::moments(contour);
        const cv::Point2d centroid(m.m10 / m.m00 / side, m.m01 / m.m00 / side);
        double best = 1e9;
        for (auto p :
             {Position::Center, Position::TopLeft, Position::TopRight, Position::BottomLeft, Position::BottomRight}) {
            const auto c = positionCenter(p);
            const double dist = std::hypot(c.x - centroid.x, c.y - centroid.y);
            if (dist < best) {
                best = dist;
                s.position = p;
            }
        }
        d.shapes.push_back(s);
    }
    std::sort(d.shapes.begin(), d.shapes.end(),
              [](const DetectedShape& a, const DetectedShape& b) { return a.area > b.area; });
    return d;
}

inline bool matches(const DetectedShape& d, const inference::training::ShapeSpec& want) {
    return d.kind == want.kind && d.color == want.color && d.position == want.position;
}

}  // namespace easel::testing
