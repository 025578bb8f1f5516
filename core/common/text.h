#pragma once
// Small string helpers the request parsers share: blanks (spaces and tabs) trimmed, lists split.

#include <string_view>
#include <vector>

namespace easel {

// `s` without leading and trailing spaces and tabs.
inline std::string_view trimBlanks(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// Every piece between separators, empty ones included ("a,,b" -> "a", "", "b"; "" -> one empty piece).
inline std::vector<std::string_view> splitOn(std::string_view s, char separator) {
    std::vector<std::string_view> out;
    while (true) {
        const auto at = s.find(separator);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) return out;
        s.remove_prefix(at + 1);
    }
}

}  // namespace easel
