#pragma once
// 8-bit RGB images and PNG files with the A1111 "parameters" text chunk. No libtorch here.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/infotext.h"

namespace easel::inference {

struct Image {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> rgb;  // row-major, 3 bytes per pixel

    bool empty() const { return width == 0 || height == 0; }
};

class ImageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Decodes PNG/JPEG/WebP/BMP bytes to RGB (alpha is composited on white). Throws ImageError for
// undecodable data or images larger than maxPixels.
Image decodeImage(const std::vector<std::uint8_t>& bytes, std::size_t maxPixels = 4096ull * 4096ull);
Image readImage(const std::filesystem::path& path);
// OpenAI's edit masks: white where a pixel is fully transparent (alpha 0), black elsewhere. nullopt when
// the image has no alpha channel or no fully transparent pixel. Throws like decodeImage.
std::optional<Image> transparencyMask(const std::vector<std::uint8_t>& bytes,
                                      std::size_t maxPixels = 4096ull * 4096ull);

// PNG bytes with optional text chunks (tEXt for Latin-1 text, iTXt for other UTF-8).
std::vector<std::uint8_t> encodePng(const Image& image, const std::map<std::string, std::string>& text = {});
void writePng(const std::filesystem::path& path, const Image& image,
              const std::map<std::string, std::string>& text = {});
// The tEXt/iTXt chunks of a PNG; throws ImageError when the bytes are not a PNG.
std::map<std::string, std::string> readPngText(const std::vector<std::uint8_t>& png);

// Resizes with area averaging when shrinking and bicubic when enlarging.
Image resizeImage(const Image& image, int width, int height);

// The A1111 infotext (common/infotext.h), which PNGs carry in their "parameters" chunk.
using Infotext = easel::Infotext;

}  // namespace easel::inference
