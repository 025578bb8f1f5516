#include "models/model_registry.h"

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/service_error.h"

namespace easel::models {

namespace {

jobs::ModelDescription describe(const inference::ModelInfo& m, const std::string& id) {
    jobs::ModelDescription d;
    d.id = id.empty() ? m.id : id;
    d.name = m.name;
    d.description = m.description;
    d.defaultWidth = m.defaultWidth;
    d.defaultHeight = m.defaultHeight;
    d.defaultSteps = m.defaultSteps;
    d.defaultGuidance = m.defaultGuidance;
    d.sizeMultiple = m.sizeMultiple;
    d.inpainting = m.inpainting;
    d.family = m.family;
    return d;
}

std::uint64_t weightBytes(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return std::filesystem::file_size(path, ec);
    std::uint64_t total = 0;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && it->path().extension() == ".safetensors") total += it->file_size(ec);
    }
    return total;
}

}  // namespace

ModelRegistry::ModelRegistry(inference::Engine& defaultEngine, inference::EngineOptions options,
                             std::uint64_t memoryBudgetBytes, EngineLoader loader)
    : m_default(defaultEngine),
      m_options(std::move(options)),
      m_budget(memoryBudgetBytes),
      m_loader(std::move(loader)) {
    if (!m_loader) {
        m_loader = [](const std::filesystem::path& path, const inference::EngineOptions& options) {
            auto engine = std::make_shared<inference::Engine>(options);
            engine->loadModel(path);  // throws a message naming what is wrong
            return engine;
        };
    }
}

std::vector<jobs::ModelDescription> ModelRegistry::models() const {
    std::vector<jobs::ModelDescription> out;
    if (auto m = defaultModel()) out.push_back(*m);
    std::lock_guard lock(m_tableMutex);
    for (const auto& e : m_entries) out.push_back(e.description);
    return out;
}

std::optional<jobs::ModelDescription> ModelRegistry::defaultModel() const {
    if (!m_default.hasModel()) return std::nullopt;
    return describe(m_default.model(), {});
}

std::size_t ModelRegistry::loadedCount() const {
    std::lock_guard lock(m_tableMutex);
    std::size_t n = 0;
    for (const auto& e : m_entries) n += e.engine != nullptr;
    return n;
}

void ModelRegistry::evictFor(std::uint64_t bytes, const std::string& keep) {
    for (;;) {
        std::uint64_t used = 0;
        Entry* oldest = nullptr;
        for (auto& e : m_entries) {
            if (!e.engine) continue;
            used += e.bytes;
            if (e.id != keep && (oldest == nullptr || e.lastUse < oldest->lastUse)) oldest = &e;
        }
        if (used + bytes <= m_budget || oldest == nullptr) return;
        oldest->engine.reset();
    }
}

ModelRegistry::Entry* ModelRegistry::find(const std::string& id) {
    for (auto& e : m_entries) {
        if (e.id == id) return &e;
    }
    return nullptr;
}

std::shared_ptr<inference::Engine> ModelRegistry::engineFor(const std::string& id) {
    if (m_default.hasModel() && (id.empty() || id == m_default.model().id)) {
        return {std::shared_ptr<inference::Engine>{}, &m_default};  // not owned
    }
    std::filesystem::path path;
    {
        std::lock_guard lock(m_tableMutex);
        Entry* e = find(id);
        if (e == nullptr) throw ServiceError(ErrorCode::BadRequest, "model '" + id + "' is not on this server");
        if (e->category != "stable_diffusion") {
            throw ServiceError(ErrorCode::BadRequest,
                               "'" + id + "' is a " + e->category + " model, not one to generate with");
        }
        e->lastUse = ++m_clock;
        if (e->engine) return e->engine;
        path = e->path;
        // Unload first, so that peak memory stays within the budget during the load.
        evictFor(e->bytes, id);
    }
    // A load takes seconds to minutes: outside the table lock, so that submits go on meanwhile.
    auto engine = m_loader(path, m_options);
    std::lock_guard lock(m_tableMutex);
    // Removed or replaced during the load: the job that asked still runs on what it loaded.
    if (Entry* e = find(id); e != nullptr && e->path == path) e->engine = engine;
    return engine;
}

jobs::ModelDescription ModelRegistry::addModel(const std::string& id, const std::filesystem::path& path,
                                               std::int64_t ownerId) {
    auto engine = m_loader(path, m_options);  // outside the table lock
    std::lock_guard lock(m_tableMutex);
    std::erase_if(m_entries, [&](const Entry& e) { return e.id == id; });
    Entry e;
    e.id = id;
    e.path = path;
    e.description = describe(engine->model(), id);
    // fileBytes stays 0: a fine-tuned model (gigabytes) was paid for by the plan's training quota and
    // does not count against its storage cap, which is sized for images.
    e.description.ownerId = ownerId;
    e.bytes = weightBytes(path);
    e.lastUse = ++m_clock;
    evictFor(e.bytes, id);
    e.engine = std::move(engine);
    m_entries.push_back(std::move(e));
    return m_entries.back().description;
}

jobs::ModelDescription ModelRegistry::addAdapter(const std::string& id, const std::filesystem::path& path,
                                                 const std::string& category, std::int64_t ownerId) {
    inference::AdapterFileInfo info;
    try {
        if (category == "lora") {
            info = inference::Engine::inspectLora(path);
        } else if (category == "embeddings") {
            info = inference::Engine::inspectEmbedding(path);
        } else {
            throw ServiceError(ErrorCode::BadRequest, "unknown model_category '" + category + "'");
        }
    } catch (const inference::GenerationError& e) {
        throw ServiceError(ErrorCode::BadRequest, e.what());
    }
    Entry e;
    e.id = id;
    e.path = path;
    e.category = category;
    e.description.id = id;
    e.description.name = id;
    e.description.description = info.description;
    e.description.category = category;
    e.description.family = info.family;
    e.description.ownerId = ownerId;
    std::error_code ec;
    e.description.fileBytes = std::filesystem::file_size(path, ec);
    std::lock_guard lock(m_tableMutex);
    std::erase_if(m_entries, [&](const Entry& x) { return x.id == id; });
    m_entries.push_back(std::move(e));
    return m_entries.back().description;
}

void ModelRegistry::resolveAdapters(const jobs::GenerationParams& p, inference::GenerationRequest& r) {
    std::lock_guard lock(m_tableMutex);
    auto fileOf = [&](const std::string& id, const std::string& category) {
        const Entry* e = find(id);
        if (e == nullptr || e->category != category) {
            throw ServiceError(ErrorCode::BadRequest, "'" + id + "' is not a " + category + " model on this server");
        }
        return e->path;
    };
    for (const auto& l : p.loras)
        r.loras.push_back({l.id, fileOf(l.id, "lora"), l.textEncoderStrength, l.unetStrength});
    for (const auto& id : p.embeddings) r.embeddings.push_back({id, fileOf(id, "embeddings")});
}

bool ModelRegistry::removeModel(const std::string& id) {
    std::lock_guard lock(m_tableMutex);
    return std::erase_if(m_entries, [&](const Entry& e) { return e.id == id; }) > 0;
}

void ModelRegistry::addInstalled(const std::filesystem::path& modelsDir) {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(modelsDir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        const auto name = it->path().filename().string();
        if (!it->is_directory() || name.ends_with(".partial")) continue;
        auto path = it->path();
        if (const auto marker = path / "easel-model.json"; std::filesystem::exists(marker)) {
            try {
                const auto j = nlohmann::json::parse(std::ifstream(marker));
                const auto category = j.at("model_category").get<std::string>();
                const auto file = path / j.at("file").get<std::string>();
                const auto owner = j.value("owner_id", std::int64_t{0});
                if (category == "stable_diffusion") {
                    addModel(name, file, owner);
                    std::lock_guard lock(m_tableMutex);  // registered; loaded again when a request asks for it
                    if (Entry* e = find(name)) e->engine.reset();
                } else {
                    addAdapter(name, file, category, owner);
                }
            } catch (const std::exception& e) {
                std::cerr << "warning: installed adapter '" << name << "' does not load: " << e.what() << '\n';
            }
            continue;
        }
        if (std::filesystem::exists(path / "model.safetensors") &&
            !std::filesystem::exists(path / "model_index.json")) {
            path /= "model.safetensors";
        }
        try {
            addModel(name, path);
            std::lock_guard lock(m_tableMutex);  // registered; loaded again when a request asks for it
            for (auto& e : m_entries) {
                if (e.id == name) e.engine.reset();
            }
        } catch (const std::exception& e) {
            std::cerr << "warning: installed model '" << name << "' does not load: " << e.what() << '\n';
        }
    }
}

jobs::GeneratedImages ModelRegistry::generate(const jobs::GenerationParams& p, const jobs::Bytes* initImage,
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
    r.scheduler = p.scheduler;  // empty: the model's default
    r.karras = p.karras;
    r.clipSkip = p.clipSkip;
    r.sizes = p.sizes;
    r.previewEvery = 1;  // cheap: the VAE for small latents, a linear map for SD's (see Engine)
    r.strength = static_cast<float>(p.strength);
    if (initImage != nullptr) r.initImage = inference::decodeImage(*initImage);
    if (maskImage != nullptr) r.mask = inference::decodeImage(*maskImage);
    resolveAdapters(p, r);

    std::lock_guard generating(m_generateMutex);
    const auto engine = engineFor(p.modelId);
    inference::GenerationResult result;
    try {
        result = engine->generate(r, [&](const inference::GenerationProgress& g) {
            if (!progress) return true;
            jobs::GenerationStep step{g.step, g.total, g.sample, nullptr};
            jobs::Bytes png;
            if (g.preview != nullptr) {
                png = inference::encodePng(*g.preview, {});
                step.previewPng = &png;
            }
            return progress(step);
        });
    } catch (const inference::GenerationCancelledError&) {
        throw jobs::GenerationCancelledError();
    }
    jobs::GeneratedImages out;
    for (std::size_t i = 0; i < result.images.size(); ++i) {
        out.pngs.push_back(inference::encodePng(result.images[i], {{"parameters", result.infotexts[i]}}));
    }
    out.meta = {{"model_id", p.modelId.empty() ? engine->model().id : p.modelId},
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
                {"scheduler", result.scheduler},
                {"use_karras_sigmas", p.karras},
                {"clip_skip", p.clipSkip},
                {"seed", result.seeds.empty() ? nlohmann::json(nullptr) : nlohmann::json(result.seeds[0])},
                {"seeds", result.seeds},
                {"infotexts", result.infotexts}};
    if (p.kind != "text2img") out.meta["strength"] = p.strength;
    for (const auto& [name, field] : SizeConditioning::kFields) {  // SDXL's, as the request gave them
        if (p.sizes.*field != 0) out.meta[std::string(name)] = p.sizes.*field;
    }
    if (!p.loras.empty()) {
        std::string ids, strengths;
        for (const auto& l : p.loras) {
            ids += (ids.empty() ? "" : ",") + l.id;
            strengths += (strengths.empty() ? "" : ",") + nlohmann::json(l.unetStrength).dump();
        }
        out.meta["lora_model"] = ids;
        out.meta["lora_strength"] = strengths;
    }
    if (!p.embeddings.empty()) out.meta["embeddings_model"] = p.embeddings;
    return out;
}

}  // namespace easel::models
