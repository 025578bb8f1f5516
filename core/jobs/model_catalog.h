#pragma once
// Models across servers. Each generating server (role "all" or "worker") writes what it has loaded
// into the workers table at every heartbeat (advertisedModels); an API-only server (role "api") loads
// no model and answers model lists and request validation from the models that live workers advertise
// (ModelCatalog). Jobs then wait in the queue for a worker that has their model.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "jobs/image_generator.h"
#include "storage/database.h"

namespace easel::jobs {

// The JSON a worker advertises: {"default": id or null, "models": [descriptions]}.
std::string advertisedModels(const ImageGenerator& generator);

class ModelCatalog final : public ImageGenerator {
public:
    // Workers not seen for `freshSeconds` (on `clock`) are taken as gone.
    ModelCatalog(const storage::Database& db, const Clock& clock, std::int64_t freshSeconds);

    std::vector<ModelDescription> models() const override;
    std::optional<ModelDescription> defaultModel() const override;
    // Never called on an API-only server (it runs no worker); throws if it is.
    GeneratedImages generate(const GenerationParams& params, const Bytes* initPng, const Bytes* maskPng,
                             const ProgressCallback& progress) override;
    // Models are loaded on the workers: 503 with that message.
    ModelDescription addModel(const std::string& id, const std::filesystem::path& path, std::int64_t ownerId) override;
    using ImageGenerator::addModel;
    // False: an API-only server has no model of its own to remove.
    bool removeModel(const std::string& id) override;
    ModelDescription addAdapter(const std::string& id, const std::filesystem::path& path, const std::string& category,
                                std::int64_t ownerId) override;
    // Live workers right now (for /health).
    int liveWorkers() const;

private:
    struct Snapshot {
        std::vector<ModelDescription> models;
        std::optional<ModelDescription> defaultModel;
        int workers = 0;
    };
    // Re-read at most once a second: every request validates against it.
    Snapshot snapshot() const;

    const storage::Database& m_db;
    const Clock& m_clock;
    std::int64_t m_freshSeconds;
    mutable std::mutex m_mutex;
    mutable Snapshot m_cached;
    mutable std::chrono::steady_clock::time_point m_readAt{};
};

}  // namespace easel::jobs
