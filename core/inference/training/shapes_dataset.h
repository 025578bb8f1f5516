#pragma once
// The procedural world of Easel's built-in model: one or two simple shapes in named colours, sizes
// and positions on a plain background, each scene with an English caption. Deterministic: scene i of
// seed s is always the same picture and caption. No libtorch here (OpenCV only).

#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace easel::inference::training {

// Heart is not in the built-in model's training set (its data set draws the first four only): the
// fine-tuning tests teach it to the model from a handful of pictures.
enum class ShapeKind { Circle, Square, Triangle, Star, Heart };
enum class ShapeSize { Small, Large };
enum class Position { Center, TopLeft, TopRight, BottomLeft, BottomRight };

struct NamedColor {
    const char* name;
    std::array<unsigned char, 3> rgb;
};

// Colours chosen far apart in hue so that a classical detector can tell them apart.
inline constexpr std::array<NamedColor, 8> kShapeColors{{
    {"red", {220, 30, 30}},
    {"green", {30, 160, 50}},
    {"blue", {40, 70, 230}},
    {"yellow", {245, 225, 30}},
    {"orange", {250, 130, 10}},
    {"purple", {130, 40, 190}},
    {"pink", {250, 120, 200}},
    {"cyan", {30, 210, 225}},
}};
inline constexpr std::array<NamedColor, 3> kBackgrounds{{
    {"white", {245, 245, 245}},
    {"black", {15, 15, 15}},
    {"gray", {128, 128, 128}},
}};

std::string shapeName(ShapeKind kind);
std::string sizeName(ShapeSize size);
// "in the center", "at the top left", ...
std::string positionPhrase(Position position);
// Centre of a position as a fraction of the image side.
cv::Point2d positionCenter(Position position);

struct ShapeSpec {
    ShapeKind kind = ShapeKind::Circle;
    int color = 0;  // index into kShapeColors
    ShapeSize size = ShapeSize::Large;
    Position position = Position::Center;
};

struct Scene {
    std::vector<ShapeSpec> shapes;  // one or two
    int background = 0;             // index into kBackgrounds
    std::string caption() const;
};

// Draws a scene as an RGB image of side `size` (anti-aliased, supersampled).
cv::Mat renderScene(const Scene& scene, int size = 64);

// Scene `index` of the data set with this seed. Scenes whose single-shape description is in
// `heldOut` (captions) are skipped deterministically, so that tests can use unseen combinations.
Scene sampleScene(std::uint64_t seed, std::uint64_t index);

// Parses a caption of this grammar back into a scene (for tests and held-out lists); nullopt if it
// is not one.
std::optional<Scene> parseCaption(const std::string& caption);

// Single-shape captions never used for training: the prompt-following test draws its prompts from
// these, so it measures generalisation to unseen combinations.
const std::vector<std::string>& heldOutCaptions();

}  // namespace easel::inference::training
