#include "common/infotext.h"

#include <algorithm>
#include <array>
#include <sstream>
#include <vector>

#include "common/text.h"

namespace easel {
namespace {

constexpr std::string_view kNegativePrefix = "Negative prompt: ";

std::string trimmed(const std::string& s) { return std::string(trimBlanks(s)); }

// "Steps: 20, Sampler: Euler a, Lora hashes: \"a: 1, b: 2\"" -> key/value pairs.
std::map<std::string, std::string> parseFields(const std::string& line) {
    std::map<std::string, std::string> fields;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
        const auto colon = line.find(": ", i);
        if (colon == std::string::npos) break;
        const std::string key = trimmed(line.substr(i, colon - i));
        i = colon + 2;
        std::string value;
        if (i < line.size() && line[i] == '"') {
            const auto end = line.find('"', i + 1);
            value = line.substr(i + 1, (end == std::string::npos ? line.size() : end) - i - 1);
            i = end == std::string::npos ? line.size() : end + 1;
        } else {
            const auto comma = line.find(", ", i);
            value = line.substr(i, (comma == std::string::npos ? line.size() : comma) - i);
            i = comma == std::string::npos ? line.size() : comma;
        }
        fields[key] = trimmed(value);
    }
    return fields;
}

}  // namespace

std::string Infotext::format() const {
    std::ostringstream s;
    s << prompt;
    if (!negativePrompt.empty()) s << '\n' << kNegativePrefix << negativePrompt;
    s << '\n';
    constexpr std::array<std::string_view, 6> kOrder{"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model"};
    bool first = true;
    auto emit = [&](const std::string& k, const std::string& v) {
        const bool quote = v.find(',') != std::string::npos || v.find(':') != std::string::npos;
        s << (first ? "" : ", ") << k << ": " << (quote ? "\"" + v + "\"" : v);
        first = false;
    };
    for (const auto k : kOrder) {
        if (auto it = fields.find(std::string(k)); it != fields.end()) emit(it->first, it->second);
    }
    for (const auto& [k, v] : fields) {
        if (std::find(kOrder.begin(), kOrder.end(), k) == kOrder.end()) emit(k, v);
    }
    return s.str();
}

Infotext Infotext::parse(const std::string& text) {
    Infotext info;
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    while (!lines.empty() && trimmed(lines.back()).empty()) lines.pop_back();
    if (!lines.empty() && lines.back().find("Steps: ") != std::string::npos) {
        info.fields = parseFields(lines.back());
        lines.pop_back();
    }
    bool negative = false;
    for (const auto& line : lines) {
        if (!negative && line.rfind(kNegativePrefix, 0) == 0) {
            negative = true;
            info.negativePrompt = line.substr(kNegativePrefix.size());
        } else if (negative) {
            info.negativePrompt += "\n" + line;
        } else {
            info.prompt += (info.prompt.empty() ? "" : "\n") + line;
        }
    }
    return info;
}

}  // namespace easel
