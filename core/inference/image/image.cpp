#include "inference/image/image.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <sstream>

namespace easel::inference {
namespace {

constexpr std::array<std::uint8_t, 8> kPngSignature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

std::uint32_t readBE32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

void appendBE32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

void appendChunk(std::vector<std::uint8_t>& out, const char type[4], const std::vector<std::uint8_t>& data) {
    appendBE32(out, static_cast<std::uint32_t>(data.size()));
    const auto start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    const auto crc = crc32(0L, out.data() + start, static_cast<uInt>(out.size() - start));
    appendBE32(out, static_cast<std::uint32_t>(crc));
}

bool isLatin1Ascii(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

cv::Mat toMat(const Image& image) {
    if (image.rgb.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height) * 3) {
        throw ImageError("image buffer does not match its size");
    }
    return cv::Mat(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.rgb.data()));
}

Image fromMat(const cv::Mat& rgb) {
    Image out;
    out.width = rgb.cols;
    out.height = rgb.rows;
    cv::Mat cont = rgb.isContinuous() ? rgb : rgb.clone();
    out.rgb.assign(cont.data, cont.data + cont.total() * 3);
    return out;
}

// Width and height from the file header, before any pixel is decoded, so that a small file that
// claims a huge bitmap is refused without allocating it. Only PNG, JPEG, WebP and BMP are accepted.
std::optional<std::pair<std::uint64_t, std::uint64_t>> probeSize(const std::vector<std::uint8_t>& b) {
    auto be16 = [&](std::size_t i) { return static_cast<std::uint32_t>(b[i] << 8 | b[i + 1]); };
    auto le16 = [&](std::size_t i) { return static_cast<std::uint32_t>(b[i] | b[i + 1] << 8); };
    auto le24 = [&](std::size_t i) { return static_cast<std::uint32_t>(b[i] | b[i + 1] << 8 | b[i + 2] << 16); };
    auto le32 = [&](std::size_t i) { return le24(i) | std::uint32_t{b[i + 3]} << 24; };
    if (b.size() >= 24 && std::equal(kPngSignature.begin(), kPngSignature.end(), b.begin()))
        return {{readBE32(&b[16]), readBE32(&b[20])}};
    if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
        const auto h = static_cast<std::int32_t>(le32(22));
        return {{le32(18), static_cast<std::uint64_t>(h < 0 ? -static_cast<std::int64_t>(h) : h)}};
    }
    if (b.size() >= 30 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WEBP", 4) == 0) {
        if (std::memcmp(b.data() + 12, "VP8 ", 4) == 0) return {{le16(26) & 0x3FFF, le16(28) & 0x3FFF}};
        if (std::memcmp(b.data() + 12, "VP8L", 4) == 0) {
            const std::uint32_t bits = le32(21);
            return {{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1}};
        }
        if (std::memcmp(b.data() + 12, "VP8X", 4) == 0) {
            // Canvas width - 1 and height - 1, 24 bits each at bytes 24 and 27 (the last byte read is 29;
            // a 32-bit read here ran one byte past a 30-byte file, found by the image fuzzer).
            return {{le24(24) + 1, le24(27) + 1}};
        }
        return std::nullopt;
    }
    if (b.size() >= 4 && b[0] == 0xFF && b[1] == 0xD8) {
        std::size_t i = 2;
        while (i + 9 < b.size()) {
            if (b[i] != 0xFF) return std::nullopt;
            const std::uint8_t marker = b[i + 1];
            if (marker == 0xFF) {
                ++i;
                continue;
            }
            const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
            if (sof) return {{be16(i + 7), be16(i + 5)}};
            if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
                i += 2;
                continue;
            }
            i += 2 + be16(i + 2);
        }
    }
    return std::nullopt;
}

}  // namespace

namespace {

// The decoded pixels as OpenCV holds them: 8-bit, 1 (grey), 3 (BGR) or 4 (BGRA) channels.
cv::Mat decodeChannels(const std::vector<std::uint8_t>& bytes, std::size_t maxPixels) {
    if (bytes.empty()) throw ImageError("the image is empty");
    const auto size = probeSize(bytes);
    if (!size) throw ImageError("the data is not a PNG, JPEG, WebP or BMP image");
    // cv::imdecode picks its decoder by content, not by our probe: a file with one of our headers that
    // OpenCV's own check for that format turns down falls through to the next decoder that claims it.
    // DICOM claims any data with "DICM" at byte 128, and its reader (GDCM) aborts the process on
    // malformed input (found by the image fuzzer). None of our four formats is also DICOM: refuse it.
    if (bytes.size() >= 132 && std::memcmp(bytes.data() + 128, "DICM", 4) == 0) {
        throw ImageError("the data is not a PNG, JPEG, WebP or BMP image");
    }
    if (size->first == 0 || size->second == 0 || size->first * size->second > maxPixels) {
        throw ImageError("the image is " + std::to_string(size->first) + "x" + std::to_string(size->second) +
                         ", larger than allowed");
    }
    cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<std::uint8_t*>(bytes.data()));
    cv::Mat decoded;
    try {
        // JPEGs (phone photos) carry their rotation in the EXIF Orientation tag, which IMREAD_COLOR
        // applies and IMREAD_UNCHANGED ignores; they have no alpha or 16-bit samples to keep.
        const bool jpeg = bytes.size() >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8;
        decoded = cv::imdecode(raw, jpeg ? cv::IMREAD_COLOR : cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception&) {
        decoded.release();
    }
    if (decoded.empty()) throw ImageError("the data is not a PNG, JPEG, WebP or BMP image");
    if (static_cast<std::size_t>(decoded.cols) * static_cast<std::size_t>(decoded.rows) > maxPixels) {
        throw ImageError("the image is " + std::to_string(decoded.cols) + "x" + std::to_string(decoded.rows) +
                         ", larger than allowed");
    }
    if (decoded.depth() != CV_8U && decoded.depth() != CV_16U)
        throw ImageError("only 8- and 16-bit images are supported");
    if (decoded.depth() == CV_16U) decoded.convertTo(decoded, CV_8U, 1.0 / 257.0);
    if (decoded.channels() != 1 && decoded.channels() != 3 && decoded.channels() != 4)
        throw ImageError("unsupported channel count");
    return decoded;
}

}  // namespace

Image decodeImage(const std::vector<std::uint8_t>& bytes, std::size_t maxPixels) {
    const cv::Mat decoded = decodeChannels(bytes, maxPixels);
    cv::Mat rgb;
    if (decoded.channels() == 1) {
        cv::cvtColor(decoded, rgb, cv::COLOR_GRAY2RGB);
    } else if (decoded.channels() == 4) {
        // Composite on white, as browsers show transparent pixels on a light page.
        cv::Mat bgr(decoded.size(), CV_8UC3);
        for (int y = 0; y < decoded.rows; ++y) {
            for (int x = 0; x < decoded.cols; ++x) {
                const auto p = decoded.at<cv::Vec4b>(y, x);
                const int a = p[3];
                for (int c = 0; c < 3; ++c)
                    bgr.at<cv::Vec3b>(y, x)[c] = static_cast<std::uint8_t>((p[c] * a + 255 * (255 - a) + 127) / 255);
            }
        }
        cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    } else {
        cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
    }
    return fromMat(rgb);
}

std::optional<Image> transparencyMask(const std::vector<std::uint8_t>& bytes, std::size_t maxPixels) {
    const cv::Mat decoded = decodeChannels(bytes, maxPixels);
    if (decoded.channels() != 4) return std::nullopt;
    Image mask{decoded.cols, decoded.rows, std::vector<std::uint8_t>(decoded.total() * 3, 0)};
    bool any = false;
    for (int y = 0; y < decoded.rows; ++y) {
        for (int x = 0; x < decoded.cols; ++x) {
            if (decoded.at<cv::Vec4b>(y, x)[3] != 0) continue;
            any = true;
            auto* px = &mask.rgb[(static_cast<std::size_t>(y) * decoded.cols + x) * 3];
            px[0] = px[1] = px[2] = 255;
        }
    }
    if (!any) return std::nullopt;
    return mask;
}

Image readImage(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ImageError("cannot read image '" + path.string() + "'");
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
        return decodeImage(bytes);
    } catch (const ImageError& e) {
        throw ImageError("'" + path.string() + "': " + e.what());
    }
}

std::vector<std::uint8_t> encodePng(const Image& image, const std::map<std::string, std::string>& text) {
    cv::Mat bgr;
    cv::cvtColor(toMat(image), bgr, cv::COLOR_RGB2BGR);
    std::vector<std::uint8_t> png;
    if (!cv::imencode(".png", bgr, png)) throw ImageError("PNG encoding failed");
    if (text.empty()) return png;
    // Insert the text chunks right after IHDR (8-byte signature + 25-byte IHDR chunk).
    constexpr std::size_t kAfterIhdr = 8 + 4 + 4 + 13 + 4;
    std::vector<std::uint8_t> out(png.begin(), png.begin() + kAfterIhdr);
    for (const auto& [key, value] : text) {
        std::vector<std::uint8_t> data(key.begin(), key.end());
        data.push_back(0);
        if (isLatin1Ascii(value)) {
            data.insert(data.end(), value.begin(), value.end());
            appendChunk(out, "tEXt", data);
        } else {
            // iTXt: keyword\0, compression flag 0, method 0, language "", translated keyword "".
            data.insert(data.end(), {0, 0, 0, 0});
            data.insert(data.end(), value.begin(), value.end());
            appendChunk(out, "iTXt", data);
        }
    }
    out.insert(out.end(), png.begin() + kAfterIhdr, png.end());
    return out;
}

void writePng(const std::filesystem::path& path, const Image& image, const std::map<std::string, std::string>& text) {
    const auto bytes = encodePng(image, text);
    const auto tmp = path.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        out.close();  // close before checking, so that a failed final flush is seen
        if (!out) {
            std::error_code ignored;
            std::filesystem::remove(tmp, ignored);
            throw ImageError("cannot write '" + tmp + "'");
        }
    }
    std::filesystem::rename(tmp, path);
}

std::map<std::string, std::string> readPngText(const std::vector<std::uint8_t>& png) {
    if (png.size() < 8 || !std::equal(kPngSignature.begin(), kPngSignature.end(), png.begin()))
        throw ImageError("not a PNG file");
    std::map<std::string, std::string> out;
    std::size_t pos = 8;
    while (pos + 12 <= png.size()) {
        const std::uint32_t len = readBE32(&png[pos]);
        if (len > png.size() - pos - 12) throw ImageError("truncated PNG chunk");
        const std::string type(reinterpret_cast<const char*>(&png[pos + 4]), 4);
        const std::uint8_t* data = &png[pos + 8];
        if (type == "tEXt" || type == "iTXt") {
            const auto* nul = static_cast<const std::uint8_t*>(std::memchr(data, 0, len));
            if (nul != nullptr) {
                const std::string key(reinterpret_cast<const char*>(data), static_cast<std::size_t>(nul - data));
                std::size_t at = static_cast<std::size_t>(nul - data) + 1;
                if (type == "iTXt") {
                    const bool compressed = at < len && data[at] != 0;
                    at += 2;                                            // compression flag and method
                    for (int skip = 0; skip < 2 && at < len; ++skip) {  // language tag, translated keyword
                        const auto* z = static_cast<const std::uint8_t*>(std::memchr(data + at, 0, len - at));
                        at = z == nullptr ? len : static_cast<std::size_t>(z - data) + 1;
                    }
                    if (!compressed && at <= len)
                        out[key] = std::string(reinterpret_cast<const char*>(data + at), len - at);
                } else {
                    out[key] = std::string(reinterpret_cast<const char*>(data + at), len - at);
                }
            }
        }
        if (type == "IEND") break;
        pos += 12 + len;
    }
    return out;
}

Image resizeImage(const Image& image, int width, int height) {
    if (image.width == width && image.height == height) return image;
    cv::Mat out;
    const bool shrink = width < image.width && height < image.height;
    cv::resize(toMat(image), out, cv::Size(width, height), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_CUBIC);
    return fromMat(out);
}

}  // namespace easel::inference
