#pragma once
// Where fine-tunes keep their files, in one place. Every training job has a work folder
// <trainingDir>/<job id> holding its input images (inputs/0, inputs/1, ...) and the trainer's
// checkpoints (work/); it is kept across attempts, so a re-run after a crash resumes from it, and is
// deleted when the job ends. A new job's images are written to a staging folder first and renamed to
// the work folder in the transaction that inserts the job. A trained model lives in
// <modelsDir>/<model id>/ with an easel-model.json {"model_category", "file", "owner_id"} (what
// ModelRegistry::addInstalled reads after a restart), registered through the ImageGenerator as its
// owner's private model or LoRA.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "jobs/image_generator.h"
#include "jobs/model_trainer.h"

namespace easel::jobs {

class TrainingFiles {
public:
    TrainingFiles(std::filesystem::path trainingDir, std::filesystem::path modelsDir, ImageGenerator& generator)
        : m_trainingDir(std::move(trainingDir)), m_modelsDir(std::move(modelsDir)), m_generator(generator) {}

    void createFolders() const;
    std::filesystem::path workDir(std::int64_t jobId) const;
    // The folder handed to ModelTrainer::train (the same on every attempt).
    std::filesystem::path checkpointDir(std::int64_t jobId) const { return workDir(jobId) / "work"; }
    std::vector<TrainingImage> inputs(std::int64_t jobId, int count) const;

    // Writes a new job's images to a staging folder (there is no job id yet) and returns it.
    std::filesystem::path stageInputs(const std::vector<Bytes>& images) const;
    // The staged folder becomes job `jobId`'s work folder.
    void adoptInputs(const std::filesystem::path& staged, std::int64_t jobId) const;
    void discardStaged(const std::filesystem::path& staged) const;
    void removeWorkDir(std::int64_t jobId) const;
    // What a crash left: every staging folder, and the work folders of jobs `active` says are not.
    void sweep(const std::function<bool(std::int64_t jobId)>& active) const;

    // Moves the trainer's result into the models dir and registers it as `ownerId`'s own.
    void install(const std::string& modelId, const TrainedModel& result, std::int64_t ownerId) const;
    // Unregisters a trained model and deletes its folder (nothing when there is none).
    void uninstall(const std::string& modelId) const;

private:
    std::filesystem::path m_trainingDir;
    std::filesystem::path m_modelsDir;
    ImageGenerator& m_generator;
};

}  // namespace easel::jobs
