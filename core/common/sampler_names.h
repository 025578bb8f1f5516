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
    std::string_view a1111;           // "DPM++ 2M SDE Karras"; empty where A1111 has no such sampler
    std::string_view diffusersClass;  // "DPMSolverMultistepScheduler"
    bool karras;                      // use_karras_sigmas
    // diffusers' algorithm_type where one class runs several algorithms ("sde-dpmsolver++" is A1111's
    // "DPM++ 2M SDE"); empty: the class's default.
    std::string_view algorithmType = {};
};

// DPMSolverSinglestepScheduler has no A1111 name: A1111's "DPM++ SDE" is a different, Brownian-tree
// based sampler, so that name stays unknown rather than running something else.
inline constexpr std::array<SamplerName, 24> kSamplerNames{{
    {"Euler", "EulerDiscreteScheduler", false},
    {"Euler Karras", "EulerDiscreteScheduler", true},
    {"Euler a", "EulerAncestralDiscreteScheduler", false},
    {"Euler a Karras", "EulerAncestralDiscreteScheduler", true},
    {"DDIM", "DDIMScheduler", false},
    {"DPM++ 2M", "DPMSolverMultistepScheduler", false},
    {"DPM++ 2M Karras", "DPMSolverMultistepScheduler", true},
    {"DPM++ 2M SDE", "DPMSolverMultistepScheduler", false, "sde-dpmsolver++"},
    {"DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", true, "sde-dpmsolver++"},
    {"LCM", "LCMScheduler", false},
    {"LCM Karras", "LCMScheduler", true},
    {"Heun", "HeunDiscreteScheduler", false},
    {"Heun Karras", "HeunDiscreteScheduler", true},
    {"PLMS", "PNDMScheduler", false},
    {"LMS", "LMSDiscreteScheduler", false},
    {"LMS Karras", "LMSDiscreteScheduler", true},
    {"DPM2", "KDPM2DiscreteScheduler", false},
    {"DPM2 Karras", "KDPM2DiscreteScheduler", true},
    {"DPM2 a", "KDPM2AncestralDiscreteScheduler", false},
    {"DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", true},
    {"", "DPMSolverSinglestepScheduler", false},
    {"UniPC", "UniPCMultistepScheduler", false},
    {"DEIS", "DEISMultistepScheduler", false},
    {"DDPM", "DDPMScheduler", false},
}};

// The entry for an A1111 name or a diffusers class name (case-insensitive); a class name gives its
// entry without Karras sigmas and with the class's default algorithm. nullopt when neither.
std::optional<SamplerName> findSamplerName(std::string_view name);

// The entry of a class, algorithm variant (empty: the default) and Karras flag; nullopt when none.
std::optional<SamplerName> findSampler(std::string_view diffusersClass, std::string_view algorithmType, bool karras);

// The A1111 name for any name findSamplerName knows, with or without Karras sigmas: "DPM++ 2M" or
// "DPMSolverMultistepScheduler" with karras gives "DPM++ 2M Karras". Where A1111 has no Karras
// spelling the plain name is returned (the infotext's "Schedule type" carries the schedule), where it
// has no name at all the class name; an unknown name comes back as it is.
std::string a1111SamplerName(std::string_view name, bool karras);

// The scheduler name the API and the desktop app send for an entry, with the Karras flag sent
// separately: the class name where it alone selects the algorithm, else the plain A1111 name
// ("DPM++ 2M SDE").
std::string apiSchedulerName(const SamplerName& entry);

}  // namespace easel
