#include "common/lora_tags.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/text.h"

namespace easel {
namespace {

std::optional<double> number(std::string_view s) {
    s = trimBlanks(s);
    if (s.empty()) return std::nullopt;
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

// "<lora:name:...>" without the angle brackets; the kind ("lora" / "lyco") already checked.
std::optional<LoraTag> parseTag(std::string_view body, std::string& error) {
    auto parts = splitOn(body, ':');
    parts.erase(parts.begin());  // the kind
    LoraTag tag;
    tag.name = std::string(trimBlanks(parts.front()));
    if (tag.name.empty()) {
        error = "a LoRA tag needs a name";
        return std::nullopt;
    }
    std::vector<std::string_view> positional;
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const auto part = trimBlanks(parts[i]);
        const auto eq = part.find('=');
        if (eq == std::string_view::npos) {
            positional.push_back(part);
            continue;
        }
        const auto key = trimBlanks(part.substr(0, eq));
        const auto value = number(part.substr(eq + 1));
        if (!value || (key != "te" && key != "unet")) {
            error = "'" + std::string(part) + "' is not te=NUMBER or unet=NUMBER";
            return std::nullopt;
        }
        (key == "te" ? tag.textEncoderStrength : tag.unetStrength) = *value;
    }
    if (positional.size() > 2) {
        error = "a LoRA tag takes at most two multipliers (text encoder, UNet)";
        return std::nullopt;
    }
    for (std::size_t i = 0; i < positional.size(); ++i) {
        const auto value = number(positional[i]);
        if (!value) {
            error = "'" + std::string(positional[i]) + "' is not a number";
            return std::nullopt;
        }
        if (i == 0) tag.textEncoderStrength = tag.unetStrength = *value;  // one multiplier: both
        if (i == 1) tag.unetStrength = *value;
    }
    return tag;
}

void appendCollapsing(std::string& out, std::string_view piece) {
    for (char c : piece) {
        if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
        out.push_back(c);
    }
}

std::string formatNumber(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace

PromptWithoutTags extractLoraTags(std::string_view prompt) {
    PromptWithoutTags result;
    std::size_t pos = 0;
    while (pos < prompt.size()) {
        const auto open = prompt.find('<', pos);
        if (open == std::string_view::npos) break;
        const auto close = prompt.find('>', open);
        if (close == std::string_view::npos) break;
        const auto body = prompt.substr(open + 1, close - open - 1);
        const auto kind = trimBlanks(body.substr(0, body.find(':')));
        if ((kind != "lora" && kind != "lyco") || body.find(':') == std::string_view::npos) {
            appendCollapsing(result.prompt, prompt.substr(pos, close + 1 - pos));  // not ours: kept
            pos = close + 1;
            continue;
        }
        appendCollapsing(result.prompt, prompt.substr(pos, open - pos));
        std::string error;
        if (auto tag = parseTag(body, error)) {
            result.loras.push_back(std::move(*tag));
        } else {
            result.errors.push_back("<" + std::string(body) + ">: " + error);
        }
        pos = close + 1;
    }
    if (pos < prompt.size()) appendCollapsing(result.prompt, prompt.substr(pos));
    while (!result.prompt.empty() && result.prompt.back() == ' ') result.prompt.pop_back();
    // A tag at the end of a list leaves ", ," or a trailing comma behind.
    std::string tidy;
    for (std::size_t i = 0; i < result.prompt.size(); ++i) {
        const char c = result.prompt[i];
        if (c == ' ' && !tidy.empty() && tidy.back() == ' ') continue;  // "a, <lora:x>, b" -> "a, b"
        if (c == ',' && !tidy.empty() &&
            (tidy.back() == ',' || (tidy.size() >= 2 && tidy.back() == ' ' && tidy[tidy.size() - 2] == ','))) {
            continue;
        }
        tidy.push_back(c);
    }
    while (!tidy.empty() && (tidy.back() == ',' || tidy.back() == ' ')) tidy.pop_back();
    while (!tidy.empty() && (tidy.front() == ',' || tidy.front() == ' ')) tidy.erase(tidy.begin());
    result.prompt = std::move(tidy);
    return result;
}

std::string formatLoraTag(const LoraTag& tag) {
    std::string out = "<lora:" + tag.name + ":" + formatNumber(tag.textEncoderStrength);
    if (tag.unetStrength != tag.textEncoderStrength) out += ":" + formatNumber(tag.unetStrength);
    return out + ">";
}

std::optional<std::vector<double>> parseStrengthList(std::string_view text) {
    std::vector<double> out;
    for (const auto part : splitOn(text, ',')) {
        const auto value = number(part);
        if (!value) return std::nullopt;
        out.push_back(*value);
    }
    return out;
}

}  // namespace easel
