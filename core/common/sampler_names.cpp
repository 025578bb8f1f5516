#include "common/sampler_names.h"

#include <algorithm>
#include <cctype>

namespace easel {
namespace {

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

std::optional<SamplerName> findSamplerName(std::string_view name) {
    for (const auto& s : kSamplerNames) {
        if (equalsIgnoringCase(name, s.a1111)) return s;
    }
    for (const auto& s : kSamplerNames) {
        if (!s.karras && equalsIgnoringCase(name, s.diffusersClass)) return s;
    }
    return std::nullopt;
}

std::string a1111SamplerName(std::string_view diffusersClass, bool karras) {
    for (const auto& s : kSamplerNames) {
        if (s.diffusersClass == diffusersClass && s.karras == karras) return std::string(s.a1111);
    }
    return std::string(diffusersClass);
}

}  // namespace easel
