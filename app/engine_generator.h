#pragma once
// jobs::ImageGenerator over inference::Engine: the one place where the backend meets libtorch's world
// (through the Engine's torch-free header). Holds the default model plus the models an admin added,
// loaded on demand and evicted least-recently-used when their weights exceed the memory budget.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "inference/engine.h"
#include "jobs/image_generator.h"

namespace easel::app {

class EngineGenerator final : public jobs::ImageGenerator {
public:
    // `defaultEngine` holds the default model (it may have none); it is never evicted.
    EngineGenerator(inference::Engine& defaultEngine, inference::EngineOptions options = {},
                    std::uint64_t memoryBudgetBytes = 8ull << 30);

    std::vector<jobs::ModelDescription> models() const override;
    std::optional<jobs::ModelDescription> defaultModel() const override;
    jobs::GeneratedImages generate(const jobs::GenerationParams& params, const jobs::Bytes* initImage,
                                   const jobs::Bytes* maskImage, const jobs::ProgressCallback& progress) override;
    jobs::ModelDescription addModel(const std::string& id, const std::filesystem::path& path) override;
    bool removeModel(const std::string& id) override;
    std::optional<std::string> checkScheduler(const std::string& name) const override {
        return inference::Engine::checkSchedulerName(name);
    }

    // Registers every model folder under `modelsDir` (installed earlier), skipping broken ones with a
    // warning.
    void addInstalled(const std::filesystem::path& modelsDir);
    std::size_t loadedCount() const;

private:
    struct Entry {
        std::string id;
        std::filesystem::path path;
        jobs::ModelDescription description;
        std::shared_ptr<inference::Engine> engine;  // null while unloaded; a running job holds its own reference
        std::uint64_t bytes = 0;
        std::uint64_t lastUse = 0;
    };
    // The engine for `id`, loading it if needed (hold m_tableMutex).
    std::shared_ptr<inference::Engine> engineFor(const std::string& id);
    void evictFor(std::uint64_t bytes, const std::string& keep);

    inference::Engine& m_default;
    inference::EngineOptions m_options;
    std::uint64_t m_budget;
    std::uint64_t m_clock = 0;
    std::mutex m_generateMutex;       // one generation at a time
    mutable std::mutex m_tableMutex;  // the model table; never held during a generation
    std::vector<Entry> m_entries;
};

}  // namespace easel::app
