#pragma once
#include <string>

namespace easel {

// 256 random bits (libsodium's CSPRNG) as URL-safe base64 without padding: 43 characters, safe in
// URLs and file names.
std::string randomToken();

}  // namespace easel
