// libFuzzer: an OpenAI-style multipart/form-data body as a client might send it, parsed with the
// Content-Type taken from the input's first line. Every part it accepts must lie inside the body, and a
// malformed body must be refused with a ServiceError, nothing else.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/service_error.h"
#include "server/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto eol = input.find('\n');
    const auto contentType =
        eol == std::string_view::npos ? std::string_view("multipart/form-data; boundary=b") : input.substr(0, eol);
    const auto body = eol == std::string_view::npos ? input : input.substr(eol + 1);
    try {
        std::size_t total = 0;
        for (const auto& part : easel::server::parseMultipartForm(contentType, body)) {
            if (part.name.empty()) __builtin_trap();
            total += part.body.size();
        }
        if (total > body.size()) __builtin_trap();
    } catch (const easel::ServiceError&) {
    }
    return 0;
}
