#pragma once
// Sampler names in both spellings users send: the diffusers / hosted-API class names
// ("DPMSolverMultistepScheduler" + use_karras_sigmas) and A1111's ("DPM++ 2M Karras"). The one
// table read by the engine's scheduler parser, the PNG infotext and the desktop app.

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace easel {

struct SamplerName {
    std::string_view a1111;           // "DPM++ 2M Karras"
    std::string_view diffusersClass;  // "DPMSolverMultistepScheduler"
    bool karras;                      // use_karras_sigmas
};

inline constexpr std::array<SamplerName, 11> kSamplerNames{{
    {"Euler", "EulerDiscreteScheduler", false},
    {"Euler Karras", "EulerDiscreteScheduler", true},
    {"Euler a", "EulerAncestralDiscreteScheduler", false},
    {"Euler a Karras", "EulerAncestralDiscreteScheduler", true},
    {"DDIM", "DDIMScheduler", false},
    {"DPM++ 2M", "DPMSolverMultistepScheduler", false},
    {"DPM++ 2M Karras", "DPMSolverMultistepScheduler", true},
    {"LCM", "LCMScheduler", false},
    {"LCM Karras", "LCMScheduler", true},
    {"Heun", "HeunDiscreteScheduler", false},
    {"Heun Karras", "HeunDiscreteScheduler", true},
}};

// The entry for an A1111 name or a diffusers class name (case-insensitive); a class name gives its
// entry without Karras sigmas. nullopt when neither.
std::optional<SamplerName> findSamplerName(std::string_view name);

// The A1111 name of a class with or without Karras sigmas; the class name itself when A1111 has none.
std::string a1111SamplerName(std::string_view diffusersClass, bool karras);

}  // namespace easel
