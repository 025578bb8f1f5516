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
    if (name.empty()) return std::nullopt;
    for (const auto& s : kSamplerNames) {
        if (equalsIgnoringCase(name, s.a1111)) return s;
    }
    for (const auto& s : kSamplerNames) {
        if (!s.karras && s.algorithmType.empty() && equalsIgnoringCase(name, s.diffusersClass)) return s;
    }
    return std::nullopt;
}

std::optional<SamplerName> findSampler(std::string_view diffusersClass, std::string_view algorithmType, bool karras) {
    for (const auto& s : kSamplerNames) {
        if (s.diffusersClass == diffusersClass && s.algorithmType == algorithmType && s.karras == karras) return s;
    }
    return std::nullopt;
}

std::string a1111SamplerName(std::string_view name, bool karras) {
    const auto entry = findSamplerName(name);
    if (!entry) return std::string(name);
    for (const bool k : {karras, false}) {
        const auto s = findSampler(entry->diffusersClass, entry->algorithmType, k);
        if (s && !s->a1111.empty()) return std::string(s->a1111);
    }
    return std::string(entry->diffusersClass);
}

std::string apiSchedulerName(const SamplerName& entry) {
    if (entry.algorithmType.empty()) return std::string(entry.diffusersClass);
    const auto plain = findSampler(entry.diffusersClass, entry.algorithmType, false);
    return std::string(plain ? plain->a1111 : entry.a1111);
}

}  // namespace easel
