#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easel {

std::string encodeBase64(const std::vector<unsigned char>& bytes);
// Standard or URL-safe alphabet, padding optional, whitespace ignored; a "data:...;base64," prefix is
// skipped. nullopt when it is not base64.
std::optional<std::vector<unsigned char>> decodeBase64(std::string_view text);

}  // namespace easel
