#include "common/random_token.h"

#include <sodium.h>

#include <stdexcept>

namespace easel {

std::string randomToken() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

std::uint32_t randomSeed() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
    return randombytes_random();
}

}  // namespace easel
