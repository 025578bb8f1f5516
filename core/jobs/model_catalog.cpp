#include "jobs/model_catalog.h"

#include <nlohmann/json.hpp>
#include <set>

#include "common/service_error.h"
#include "storage/worker_repository.h"

namespace easel::jobs {
namespace {

nlohmann::json toJson(const ModelDescription& m) {
    return {{"id", m.id},
            {"name", m.name},
            {"description", m.description},
            {"default_width", m.defaultWidth},
            {"default_height", m.defaultHeight},
            {"default_steps", m.defaultSteps},
            {"default_guidance", m.defaultGuidance},
            {"size_multiple", m.sizeMultiple},
            {"inpainting", m.inpainting},
            {"category", m.category},
            {"family", m.family},
            {"owner_id", m.ownerId},
            {"file_bytes", m.fileBytes}};
}

ModelDescription fromJson(const nlohmann::json& j) {
    ModelDescription m;
    m.id = j.value("id", "");
    m.name = j.value("name", "");
    m.description = j.value("description", "");
    m.defaultWidth = j.value("default_width", 512);
    m.defaultHeight = j.value("default_height", 512);
    m.defaultSteps = j.value("default_steps", 20);
    m.defaultGuidance = j.value("default_guidance", 7.5);
    m.sizeMultiple = j.value("size_multiple", 8);
    m.inpainting = j.value("inpainting", false);
    m.category = j.value("category", "stable_diffusion");
    m.family = j.value("family", "");
    m.ownerId = j.value("owner_id", std::int64_t{0});
    m.fileBytes = j.value("file_bytes", std::uint64_t{0});
    return m;
}

[[noreturn]] void onWorkers(const std::string& what) {
    throw ServiceError(ErrorCode::Unavailable,
                       "this server only answers the API (--role api); " + what + " on a worker server");
}

}  // namespace

std::string advertisedModels(const ImageGenerator& generator) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& m : generator.models()) list.push_back(toJson(m));
    const auto fallback = generator.defaultModel();
    return nlohmann::json{{"default", fallback ? nlohmann::json(fallback->id) : nlohmann::json()}, {"models", list}}
        .dump();
}

ModelCatalog::ModelCatalog(const storage::Database& db, const Clock& clock, std::int64_t freshSeconds)
    : m_db(db), m_clock(clock), m_freshSeconds(freshSeconds) {}

ModelCatalog::Snapshot ModelCatalog::snapshot() const {
    std::lock_guard lock(m_mutex);
    const auto now = std::chrono::steady_clock::now();
    if (m_readAt != std::chrono::steady_clock::time_point{} && now - m_readAt < std::chrono::seconds(1)) {
        return m_cached;
    }
    Snapshot s;
    std::set<std::string> seen;
    // The most recently seen worker first: its default model is the default.
    for (const auto& w : storage::WorkerRepository(m_db).seenSince(m_clock.nowSeconds() - m_freshSeconds)) {
        const auto j = nlohmann::json::parse(w.models, nullptr, false);
        if (j.is_discarded() || !j.contains("models") || !j["models"].is_array()) continue;
        ++s.workers;
        std::optional<ModelDescription> workerDefault;
        for (const auto& item : j["models"]) {
            auto m = fromJson(item);
            if (j.value("default", nlohmann::json()).is_string() && m.id == j["default"].get<std::string>()) {
                workerDefault = m;
            }
            if (seen.insert(m.id).second) s.models.push_back(std::move(m));
        }
        if (!s.defaultModel && workerDefault) s.defaultModel = std::move(workerDefault);
    }
    m_cached = s;
    m_readAt = now;
    return s;
}

std::vector<ModelDescription> ModelCatalog::models() const { return snapshot().models; }
std::optional<ModelDescription> ModelCatalog::defaultModel() const { return snapshot().defaultModel; }
int ModelCatalog::liveWorkers() const { return snapshot().workers; }

GeneratedImages ModelCatalog::generate(const GenerationParams&, const Bytes*, const Bytes*, const ProgressCallback&) {
    throw std::logic_error("an API-only server does not generate");
}

ModelDescription ModelCatalog::addModel(const std::string&, const std::filesystem::path&, std::int64_t) {
    onWorkers("load models");
}

// Nothing is loaded here: the workers remove their copies when the delete is recorded (a trained model's
// delete taken by this server, say).
bool ModelCatalog::removeModel(const std::string&) { return false; }

ModelDescription ModelCatalog::addAdapter(const std::string&, const std::filesystem::path&, const std::string&,
                                          std::int64_t) {
    onWorkers("load LoRAs and embeddings");
}

}  // namespace easel::jobs
