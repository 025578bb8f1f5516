#pragma once
// The limits of a generation request, defined once. The service's validation, the engine's own
// checks and the OpenAPI document read them from here, so the three cannot disagree.

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

namespace easel::limits {

template <typename T>
struct Range {
    T min;
    T max;
    constexpr bool contains(T v) const { return v >= min && v <= max; }  // false for NaN
    // "from 1 to 4", as error messages and the API document say it.
    std::string describe() const {
        std::ostringstream s;
        s << "from " << min << " to " << max;
        return s.str();
    }
};

inline constexpr Range<int> kSamples{1, 4};
// Sampling steps; a plan may cap them lower (requests above the cap are clamped to it).
inline constexpr Range<int> kSteps{1, 150};
// Classifier-free guidance; at most 1 means none (Turbo and LCM models run at 0 to 1).
inline constexpr Range<double> kGuidance{0, 20};
// img2img / inpaint: how much of the init image is repainted.
inline constexpr Range<double> kStrength{0, 1};
// A1111's CLIP skip: 1 = the model's own conditioning layer.
inline constexpr Range<int> kClipSkip{1, 12};
// Seeds as the hosted API takes them (uint32); -1 or null means random.
inline constexpr Range<std::int64_t> kSeed{0, 4294967295LL};
// Image sides: the most the engine runs at all, and what the server accepts unless its operator
// sets GenerationOptions::maxSide. Both are multiples of every model's size multiple.
inline constexpr int kEngineMaxSide = 2048;
inline constexpr int kDefaultMaxSide = 1024;
// SDXL's size conditioning (original size, crop corner, target size) in pixels; 0 = the image's own.
inline constexpr Range<int> kSizeConditioning{0, 16 * kEngineMaxSide};
// Init images and masks: at most this many pixels (2048 x 2048), checked from the file's header
// before anything is decoded; and at most this many decoded at once, so a burst of large uploads
// cannot take every core and gigabytes of memory.
inline constexpr std::uint64_t kMaxInputPixels = 2048ull * 2048ull;
inline constexpr int kConcurrentDecodes = 2;
// Prompt length: 8 chunks of 75 tokens; each chunk adds 77 context tokens to every cross-attention.
inline constexpr int kMaxPromptChunks = 8;
// LoRAs and embeddings of one request, and a LoRA's multiplier (A1111 allows negative ones; past
// these a LoRA only destroys the picture).
inline constexpr std::size_t kMaxLoras = 8;
inline constexpr std::size_t kMaxEmbeddings = 16;
inline constexpr Range<double> kLoraStrength{-4, 4};

// Fine-tuning (fine_tune, lora_fine_tune): the images of one training (the hosted API asks for 7 or 8;
// DreamBooth works from 3 to about 20), each at most this many bytes encoded, and the optimiser steps
// (default kDefaultStepsPerImage per image, capped at the maximum).
inline constexpr Range<int> kTrainingImages{1, 20};
inline constexpr std::size_t kMaxTrainingImageBytes = 10u << 20;
inline constexpr Range<int> kTrainSteps{1, 2000};
inline constexpr int kDefaultStepsPerImage = 2;

}  // namespace easel::limits
