#pragma once
// The model registry: jobs::ImageGenerator over inference::Engine, the one place where the backend
// meets libtorch's world (through the Engine's torch-free header). Holds the default model plus the
// models an admin added or installed, loaded on demand and evicted least-recently-used when their
// weights exceed the memory budget (--model-memory-gb). Used by easel-server and the desktop app alike.
//
// Locking: m_tableMutex guards the table and is what every submit takes (models(), checkScheduler);
// it is never held while a model loads or generates. Loads happen in generate() (one at a time,
// under m_generateMutex) and in addModel(), both outside the table lock.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "inference/engine.h"
#include "jobs/image_generator.h"
#include "jobs/model_trainer.h"

namespace easel::models {

// Makes a loaded engine from a model folder or file; the default reads it with inference::Engine.
using EngineLoader =
    std::function<std::shared_ptr<inference::Engine>(const std::filesystem::path&, const inference::EngineOptions&)>;

class ModelRegistry final : public jobs::ImageGenerator, public jobs::ModelTrainer {
public:
    // `defaultEngine` holds the default model (it may have none); it is never evicted.
    ModelRegistry(inference::Engine& defaultEngine, inference::EngineOptions options = {},
                  std::uint64_t memoryBudgetBytes = 8ull << 30, EngineLoader loader = {});

    std::vector<jobs::ModelDescription> models() const override;
    std::optional<jobs::ModelDescription> defaultModel() const override;
    jobs::GeneratedImages generate(const jobs::GenerationParams& params, const jobs::Bytes* initImage,
                                   const jobs::Bytes* maskImage, const jobs::ProgressCallback& progress) override;
    using jobs::ImageGenerator::addModel;
    jobs::ModelDescription addModel(const std::string& id, const std::filesystem::path& path,
                                    std::int64_t ownerId) override;
    bool removeModel(const std::string& id) override;
    jobs::ModelDescription addAdapter(const std::string& id, const std::filesystem::path& path,
                                      const std::string& category, std::int64_t ownerId) override;
    std::optional<std::string> checkScheduler(const std::string& name) const override {
        return inference::Engine::checkSchedulerName(name);
    }

    // Fine-tunes a copy of the base model in an engine of its own, in float32 (registry_training.cpp);
    // generation goes on beside it.
    jobs::TrainedModel train(const jobs::TrainingParams& params, const std::vector<jobs::TrainingImage>& images,
                             const std::filesystem::path& workDir, const jobs::TrainingProgress& progress) override;
    // How often a training saves a checkpoint that a restart resumes from (default 120 s).
    void setTrainingCheckpointSeconds(double seconds) { m_trainingCheckpointSeconds = seconds; }

    // Registers every model folder under `modelsDir` (installed earlier; a folder with easel-model.json
    // {"model_category": "lora"|"embeddings"|"stable_diffusion", "file": ..., "owner_id": N} holds an
    // adapter, or a model (a fine-tune's result) in the folder or file `file`), skipping broken ones
    // with a warning.
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
        std::string category = "stable_diffusion";  // or "lora" / "embeddings": a file, never loaded here
    };
    // The engine for `id`, loading it if needed; takes m_tableMutex itself, but not during the load.
    std::shared_ptr<inference::Engine> engineFor(const std::string& id);
    Entry* find(const std::string& id);
    // The request's LoRAs and embeddings as files (ServiceError 400 for an id that is not one).
    void resolveAdapters(const jobs::GenerationParams& p, inference::GenerationRequest& r);
    // Unloads least-recently-used models until `bytes` more fit the budget (hold m_tableMutex).
    void evictFor(std::uint64_t bytes, const std::string& keep);

    inference::Engine& m_default;
    inference::EngineOptions m_options;
    double m_trainingCheckpointSeconds = 120;
    std::uint64_t m_budget;
    EngineLoader m_loader;
    std::uint64_t m_clock = 0;
    std::mutex m_generateMutex;       // one generation at a time
    mutable std::mutex m_tableMutex;  // the model table; never held during a generation
    std::vector<Entry> m_entries;
};

}  // namespace easel::models
