#pragma once
#include <cstdint>
#include <string>

namespace easel {

// 256 random bits (libsodium's CSPRNG) as URL-safe base64 without padding: 43 characters, safe in
// URLs and file names.
std::string randomToken();

// A uniformly random generation seed, 0 to 2^32 - 1 (libsodium's CSPRNG).
std::uint32_t randomSeed();

}  // namespace easel
