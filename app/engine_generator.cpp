#include "engine_generator.h"

#include "common/service_error.h"

namespace easel::app {

std::vector<jobs::ModelDescription> EngineGenerator::models() const {
    std::vector<jobs::ModelDescription> out;
    if (auto m = defaultModel()) out.push_back(*m);
    return out;
}

std::optional<jobs::ModelDescription> EngineGenerator::defaultModel() const {
    if (!m_engine.hasModel()) return std::nullopt;
    const auto& m = m_engine.model();
    jobs::ModelDescription d;
    d.id = m.id;
    d.name = m.name;
    d.description = m.description;
    d.defaultWidth = m.defaultWidth;
    d.defaultHeight = m.defaultHeight;
    d.defaultSteps = m.defaultSteps;
    d.defaultGuidance = m.defaultGuidance;
    d.sizeMultiple = m.sizeMultiple;
    d.inpainting = m.inpainting;
    return d;
}

jobs::GeneratedImages EngineGenerator::generate(const jobs::GenerationParams& p, const jobs::Bytes* initImage,
                                                const jobs::Bytes* maskImage, const jobs::ProgressCallback& progress) {
    inference::GenerationRequest r;
    r.prompt = p.prompt;
    r.negativePrompt = p.negativePrompt;
    r.width = p.width;
    r.height = p.height;
    r.steps = p.steps;
    r.guidanceScale = static_cast<float>(p.guidance);
    r.samples = p.samples;
    r.seed = p.seed;
    if (!p.scheduler.empty())
        r.scheduler = p.scheduler;
    else
        r.scheduler = "DPM++ 2M";
    r.karras = p.karras;
    r.clipSkip = p.clipSkip;
    r.strength = static_cast<float>(p.strength);
    if (initImage != nullptr) r.initImage = inference::decodeImage(*initImage);
    if (maskImage != nullptr) r.mask = inference::decodeImage(*maskImage);

    std::lock_guard lock(m_mutex);
    inference::GenerationResult result;
    try {
        result = m_engine.generate(r, [&](const inference::GenerationProgress& g) {
            return !progress || progress(g.step, g.total, g.sample);
        });
    } catch (const inference::GenerationCancelledError&) {
        throw jobs::GenerationCancelledError();
    }
    jobs::GeneratedImages out;
    for (std::size_t i = 0; i < result.images.size(); ++i) {
        out.pngs.push_back(inference::encodePng(result.images[i], {{"parameters", result.infotexts[i]}}));
    }
    const auto& model = m_engine.model();
    out.meta = {{"model_id", model.id},
                {"prompt", p.prompt},
                {"negative_prompt", p.negativePrompt},
                {"W", result.images.empty() ? p.width : result.images[0].width},
                {"H", result.images.empty() ? p.height : result.images[0].height},
                {"steps", p.steps},
                {"width", result.images.empty() ? p.width : result.images[0].width},
                {"height", result.images.empty() ? p.height : result.images[0].height},
                {"num_inference_steps", p.steps},
                {"guidance_scale", p.guidance},
                {"n_samples", p.samples},
                {"scheduler", r.scheduler},
                {"use_karras_sigmas", p.karras},
                {"clip_skip", p.clipSkip},
                {"seed", result.seeds.empty() ? nlohmann::json(nullptr) : nlohmann::json(result.seeds[0])},
                {"seeds", result.seeds},
                {"infotexts", result.infotexts}};
    if (p.kind != "text2img") out.meta["strength"] = p.strength;
    return out;
}

}  // namespace easel::app
