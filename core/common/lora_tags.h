#pragma once
// A1111's extra-network syntax in a prompt: <lora:name>, <lora:name:0.7>, <lora:name:te:unet> (text
// encoder and UNet multipliers), named te=/unet= arguments, and <lyco:...> as a synonym. The tags are
// taken out of the prompt (they are not words for the text encoder) and returned as adapter uses.
// Torch-free: the service layer checks the names before a job is charged, the engine applies them.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easel {

struct LoraTag {
    std::string name;
    double textEncoderStrength = 1.0;
    double unetStrength = 1.0;
};

struct PromptWithoutTags {
    std::string prompt;  // the tags removed, the spaces around them collapsed
    std::vector<LoraTag> loras;
    std::vector<std::string> errors;  // one per malformed tag ("<lora:x:abc>: 'abc' is not a number")
};

PromptWithoutTags extractLoraTags(std::string_view prompt);

// The tag for a use, as A1111 writes it back into an infotext prompt: <lora:name:0.7>, or
// <lora:name:0.5:0.8> when the two strengths differ.
std::string formatLoraTag(const LoraTag& tag);

// Parses lora_strength as the hosted API sends it: a number, or a comma-separated list with one value
// per LoRA. nullopt when malformed.
std::optional<std::vector<double>> parseStrengthList(std::string_view text);

}  // namespace easel
