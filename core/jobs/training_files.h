#pragma once
// Where fine-tunes keep their files, in one place. Every training job has a work folder
// <trainingDir>/<job id> holding its input images (inputs/0, inputs/1, ...) and the trainer's
// checkpoints (work/); it is kept across attempts, so a re-run after a crash resumes from it, and is
// deleted when the job ends. A new job's images are written to a staging folder first and renamed to
// the work folder in the transaction that inserts the job. A trained model lives in
// <modelsDir>/<model id>/ with an easel-model.json {"model_category", "file", "owner_id"} (what
// ModelRegistry::addInstalled reads after a restart), registered through the ImageGenerator as its
// owner's private model or LoRA.
//
// Several servers (a shared database and blob store): a training submitted to a server without a
// trainer keeps its inputs as blobs of its owner ("training-<token>-<i>") until the server that takes
// it copies them into its work folder, and a trained model is published: its files are copied to blobs
// ("model-<model id>-a<attempt>-<i>") and its install recorded (storage::ModelInstallRepository, source
// "blob_files") so that every generating server installs it as its owner's; uninstall records the
// delete and removes those blobs.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "jobs/image_generator.h"
#include "jobs/model_trainer.h"
#include "storage/blob_store.h"
#include "storage/database.h"

namespace easel::jobs {

class TrainingFiles {
public:
    // `sharedDb` and `sharedBlobs`: set when several servers share the database and the blob store.
    TrainingFiles(std::filesystem::path trainingDir, std::filesystem::path modelsDir, ImageGenerator& generator,
                  const storage::Database* sharedDb = nullptr, storage::BlobStore* sharedBlobs = nullptr)
        : m_trainingDir(std::move(trainingDir)),
          m_modelsDir(std::move(modelsDir)),
          m_generator(generator),
          m_sharedDb(sharedDb),
          m_sharedBlobs(sharedDb != nullptr ? sharedBlobs : nullptr) {}

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

    // Several servers: whether inputs and trained models can go through the shared blob store.
    bool shared() const { return m_sharedBlobs != nullptr; }
    // Stores a new job's images as blobs of `owner` and returns their names (none left on a failure).
    std::vector<std::string> putInputBlobs(std::int64_t owner, const std::vector<Bytes>& images) const;
    // Copies the blobs into job `jobId`'s work folder (the ones already there are kept: a resumed run).
    void fetchInputBlobs(std::int64_t jobId, std::int64_t owner, const std::vector<std::string>& names) const;
    // Best effort: what cannot be removed now is left to the orphan sweep.
    void removeBlobs(std::int64_t owner, const std::vector<std::string>& names) const;
    void removeWorkDir(std::int64_t jobId) const;
    // What a crash left: every staging folder, and the work folders of jobs `active` says are not.
    void sweep(const std::function<bool(std::int64_t jobId)>& active) const;

    // Moves the trainer's result into the models dir and registers it as `ownerId`'s own.
    void install(const std::string& modelId, const TrainedModel& result, std::int64_t ownerId) const;
    // Several servers: copies the installed model's files to the blob store (named after the run's
    // `attempt`, so that two runs of one job never share a blob) and records the install for every
    // server; returns the recorded version (0: no shared blob store). Throws when either fails, leaving
    // no blob.
    std::int64_t publish(const std::string& modelId, std::int64_t ownerId, int attempt) const;
    // Unregisters a trained model and deletes its folder (nothing when there is none); several servers:
    // every server removes its copy and the published blobs go.
    void uninstall(const std::string& modelId) const;
    // A run that installed (and maybe published, as `publishedVersion`) a model and then did not succeed:
    // this server's copy goes, and the published one only while it is still the recorded version (a
    // later run of the job may have published its own).
    void uninstallRun(const std::string& modelId, std::int64_t publishedVersion) const;

private:
    // This server's copy: unregistered, its folder deleted.
    void uninstallHere(const std::string& modelId) const;
    // Several servers: the recorded install marked removed (only at `version`, when given) and, if it
    // was, its published blobs deleted.
    void unpublish(const std::string& modelId, std::optional<std::int64_t> version) const;

    std::filesystem::path m_trainingDir;
    std::filesystem::path m_modelsDir;
    ImageGenerator& m_generator;
    const storage::Database* m_sharedDb;
    storage::BlobStore* m_sharedBlobs;
};

// The blobs of a trained model's recorded install (storage::ModelInstallRow::source); none for others.
std::vector<std::string> publishedBlobs(const std::string& installSource);

}  // namespace easel::jobs
