// libFuzzer: uploaded image bytes as the server reads them: base64 (with or without a data: URL
// prefix) decoded, then the header probe and the OpenCV decode under the input pixel limit.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/base64.h"
#include "common/request_limits.h"
#include "inference/image/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> bytes(data, data + size);
    if (size > 0 && data[0] == 'd') {  // text: try it as base64 / a data URL
        if (auto decoded = easel::decodeBase64(std::string(reinterpret_cast<const char*>(data), size))) {
            bytes.assign(decoded->begin(), decoded->end());
        }
    }
    try {
        const auto image = easel::inference::decodeImage(bytes, easel::limits::kMaxInputPixels);
        if (image.rgb.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height) * 3) {
            __builtin_trap();  // a decoded image must be exactly width x height RGB
        }
    } catch (const std::exception&) {
    }
    try {
        (void)easel::inference::readPngText(bytes);
    } catch (const std::exception&) {
    }
    return 0;
}
