#pragma once
// What a job asks for, after the API layer has parsed and validated it. Stored with the job as JSON
// so that a job re-queued after a crash runs with exactly the same parameters.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/size_conditioning.h"

namespace easel::jobs {

// A LoRA (or LyCORIS) model applied to one request, at a strength for the text encoder and one for
// the UNet (the same unless an A1111 tag gave two).
struct LoraUse {
    std::string id;
    double textEncoderStrength = 1.0;
    double unetStrength = 1.0;
};

struct GenerationParams {
    std::string kind = "text2img";  // text2img | img2img | inpaint
    std::string modelId;            // empty: the server's default model
    std::string prompt;
    std::string negativePrompt;
    int width = 0;   // 0: the model's default
    int height = 0;  // 0: the model's default
    int samples = 1;
    int steps = 0;           // 0: the model's default
    double guidance = -1.0;  // < 0: the model's default
    std::optional<std::int64_t> seed;
    std::string scheduler;  // diffusers or A1111 name; empty: the default
    bool karras = false;
    int clipSkip = 1;
    SizeConditioning sizes;               // SDXL's size conditioning; other models ignore it
    std::vector<LoraUse> loras;           // lora_model / lora_strength and the prompt's <lora:...> tags
    std::vector<std::string> embeddings;  // embeddings_model: textual inversions whose trigger words work
    double strength = 0.75;
    std::string initBlob;  // blob names of the decoded, validated input images (PNG)
    std::string maskBlob;
    bool base64 = false;  // answer with base64 images instead of links
    // The names the images will have, one per sample, chosen when the job is accepted so that the
    // "processing" reply can already give their links (the hosted API's future_links).
    std::vector<std::string> imageTokens;
    // The server address the request came in on (its Host, or the configured public URL): the base of
    // the links in the webhook payload, which is sent long after the request has gone.
    std::string linkBase;
};

nlohmann::json toJson(const GenerationParams& p);
GenerationParams paramsFromJson(const nlohmann::json& j);

}  // namespace easel::jobs
