#include "jobs/generation_params.h"

namespace easel::jobs {

nlohmann::json toJson(const GenerationParams& p) {
    auto loras = nlohmann::json::array();
    for (const auto& l : p.loras) {
        loras.push_back(
            {{"id", l.id}, {"text_encoder_strength", l.textEncoderStrength}, {"unet_strength", l.unetStrength}});
    }
    nlohmann::json j{{"kind", p.kind},
                     {"model_id", p.modelId},
                     {"prompt", p.prompt},
                     {"negative_prompt", p.negativePrompt},
                     {"width", p.width},
                     {"height", p.height},
                     {"samples", p.samples},
                     {"num_inference_steps", p.steps},
                     {"guidance_scale", p.guidance},
                     {"seed", p.seed ? nlohmann::json(*p.seed) : nlohmann::json(nullptr)},
                     {"scheduler", p.scheduler},
                     {"use_karras_sigmas", p.karras},
                     {"clip_skip", p.clipSkip},
                     {"loras", loras},
                     {"embeddings", p.embeddings},
                     {"strength", p.strength},
                     {"init_blob", p.initBlob},
                     {"mask_blob", p.maskBlob},
                     {"base64", p.base64},
                     {"image_tokens", p.imageTokens},
                     {"link_base", p.linkBase}};
    for (const auto& [name, field] : SizeConditioning::kFields) j[std::string(name)] = p.sizes.*field;
    return j;
}

GenerationParams paramsFromJson(const nlohmann::json& j) {
    GenerationParams p;
    p.kind = j.value("kind", p.kind);
    p.modelId = j.value("model_id", p.modelId);
    p.prompt = j.value("prompt", p.prompt);
    p.negativePrompt = j.value("negative_prompt", p.negativePrompt);
    p.width = j.value("width", p.width);
    p.height = j.value("height", p.height);
    p.samples = j.value("samples", p.samples);
    p.steps = j.value("num_inference_steps", p.steps);
    p.guidance = j.value("guidance_scale", p.guidance);
    if (j.contains("seed") && j["seed"].is_number_integer()) p.seed = j["seed"].get<std::int64_t>();
    p.scheduler = j.value("scheduler", p.scheduler);
    p.karras = j.value("use_karras_sigmas", p.karras);
    p.clipSkip = j.value("clip_skip", p.clipSkip);
    for (const auto& [name, field] : SizeConditioning::kFields) p.sizes.*field = j.value(std::string(name), 0);
    if (const auto it = j.find("loras"); it != j.end() && it->is_array()) {
        for (const auto& l : *it) {
            p.loras.push_back(
                {l.value("id", std::string()), l.value("text_encoder_strength", 1.0), l.value("unet_strength", 1.0)});
        }
    }
    p.embeddings = j.value("embeddings", p.embeddings);
    p.strength = j.value("strength", p.strength);
    p.initBlob = j.value("init_blob", p.initBlob);
    p.maskBlob = j.value("mask_blob", p.maskBlob);
    p.base64 = j.value("base64", p.base64);
    p.imageTokens = j.value("image_tokens", p.imageTokens);
    p.linkBase = j.value("link_base", p.linkBase);
    return p;
}

}  // namespace easel::jobs
