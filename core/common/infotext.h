#pragma once
// The A1111 "parameters" text that PNGs carry (and that A1111, ComfyUI and Civitai read):
//   prompt lines
//   Negative prompt: negative lines
//   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: x, Lora hashes: "a: 1, b: 2"
// One implementation for the engine that writes it and the desktop app that reads it back.

#include <map>
#include <string>

namespace easel {

struct Infotext {
    std::string prompt;
    std::string negativePrompt;
    std::map<std::string, std::string> fields;  // "Steps" -> "20", ...

    // A1111's order for the fields it writes first, the rest alphabetically; values with a comma or
    // a colon are quoted.
    std::string format() const;
    // Tolerant of CRLF and trailing blank lines; the last line holds the fields when it contains
    // "Steps: ". Keys and values are trimmed.
    static Infotext parse(const std::string& text);
};

}  // namespace easel
