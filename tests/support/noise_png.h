#pragma once
// A PNG of pseudo-random pixels: noise does not compress, so its size is about 3 bytes a pixel,
// which tests of byte limits rely on. Deterministic for a given side.

#include <cstdint>
#include <vector>

#include "inference/image/image.h"

namespace easel::testing {

inline std::vector<std::uint8_t> noisePng(int side) {
    inference::Image img;
    img.width = img.height = side;
    img.rgb.resize(static_cast<std::size_t>(side) * static_cast<std::size_t>(side) * 3);
    std::uint32_t x = 12345;
    for (auto& v : img.rgb) {
        x = x * 1664525u + 1013904223u;  // Numerical Recipes' LCG; the top byte is well mixed
        v = static_cast<std::uint8_t>(x >> 24);
    }
    return inference::encodePng(img);
}

}  // namespace easel::testing
