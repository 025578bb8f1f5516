#pragma once
// Installs models for the admin's load_model: from a local path, an https URL to a .safetensors, or a
// Hugging Face repo id (hub base URL configurable, like HF_ENDPOINT). Downloads run in the background
// into <models dir>/<id>.partial/, resume with Range after an interruption, are checked against the
// announced size, refuse pickle formats, and are handed to the generator (which loads them) when
// complete. Status is kept per model id for verify_model.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobs/image_generator.h"
#include "net/http_client.h"
#include "storage/blob_store.h"
#include "storage/database.h"

namespace easel::models {

struct ModelInstallOptions {
    std::filesystem::path modelsDir;
    std::string hubUrl = "https://huggingface.co";
    net::UrlPolicy policy;
    std::uint64_t maxDownloadBytes = 16ull << 30;
    // An account loading its own LoRAs and embeddings: how many it may keep, and install at once.
    int maxAdaptersPerAccount = 50;
    int maxInstallsPerAccount = 2;
    // Several servers on one database: a load or delete is recorded there and every generating server
    // applies it (each downloads into its own models dir; servers sharing a data dir take turns, and
    // the second loads what the first wrote). This server's name on its reports (JobRunner's worker id).
    const storage::Database* sharedDb = nullptr;
    std::string workerId;
    // False on an API-only server: it records loads and answers verify_model from the workers' reports.
    bool installsHere = true;
    // Several servers: the blob store they share, where trained models are published (ModelSource::blobFiles).
    const storage::BlobStore* blobs = nullptr;
    // How often a generating server looks for loads and deletes made on other servers.
    std::chrono::milliseconds syncEvery{2000};
};

struct ModelSource {
    std::string modelId;
    std::string url;     // https://.../x.safetensors
    std::string hfRepo;  // owner/name
    std::string path;    // a local folder or file (admins only)
    std::string revision = "main";
    // "stable_diffusion" (a checkpoint or diffusers folder), "lora" or "embeddings" (one .safetensors).
    std::string category = "stable_diffusion";
    // 0: an admin's load, shared by every account. Else the account loading a LoRA or embedding of its
    // own: from a URL or the hub only, under an id no other model has, private to it.
    std::int64_t ownerId = 0;
    std::uint64_t maxBytes = 0;  // the largest download; 0: ModelInstallOptions::maxDownloadBytes
    // A model trained on another server (jobs::TrainingFiles::publish): its folder's files (relative
    // path -> blob of ownerId in the shared blob store), easel-model.json among them. Installed as the
    // owner's private model, whatever its category; only ever recorded, never asked for through start().
    std::map<std::string, std::string> blobFiles;
};

struct InstallStatus {
    std::string modelId;
    std::string state;  // "downloading", "loading", "ready", "failed"
    std::uint64_t bytesDone = 0;
    std::uint64_t bytesTotal = 0;
    double etaSeconds = 0;
    std::string message;
    std::int64_t ownerId = 0;  // ModelSource::ownerId of the install
};

class ModelInstaller {
public:
    ModelInstaller(ModelInstallOptions options, jobs::ImageGenerator& generator);
    ~ModelInstaller();
    ModelInstaller(const ModelInstaller&) = delete;
    ModelInstaller& operator=(const ModelInstaller&) = delete;

    // Validates the request (throws ServiceError 400 / 409) and starts the installation.
    InstallStatus start(const ModelSource& source);
    std::optional<InstallStatus> status(const std::string& modelId) const;
    // Removes the model from the generator and its files from disk. False when unknown.
    bool remove(const std::string& modelId);
    // An account's purge: removes every adapter it owns, and makes its running installs end as failed.
    void removeOwnedBy(std::int64_t ownerId);
    // Aborts running downloads (they end as failed, their partial files kept for a resume).
    void cancel();
    // Waits for all running installations (tests, shutdown).
    void join();
    // Several servers: applies the loads and deletes recorded by other servers now (the sync thread
    // does it every syncEvery).
    void syncNow();

private:
    // Starts the download-and-load thread (hold m_mutex). `version`: of the shared record, 0 if none.
    void launch(const ModelSource& source, std::int64_t version);
    void run(ModelSource source, std::int64_t version);
    void syncLoop();
    // What the workers report for a load recorded in the shared database (an API-only server).
    std::optional<InstallStatus> sharedStatus(const std::string& modelId) const;
    // Removes this server's copy (generator, files, status).
    bool removeHere(const std::string& modelId);
    void report(const std::string& modelId, const InstallStatus& s);
    void download(const std::string& modelId, const std::string& url, const std::filesystem::path& target,
                  std::uint64_t maxBytes);
    // For an account's own adapter (hold m_mutex): the id is free or already its own, and it has room.
    void checkOwnLoad(const ModelSource& s) const;
    void setStatus(const std::string& id, InstallStatus s);

    ModelInstallOptions m_options;
    jobs::ImageGenerator& m_generator;
    mutable std::mutex m_mutex;
    std::map<std::string, InstallStatus> m_status;
    std::vector<std::int64_t> m_purgedOwners;  // accounts deleted while an install of theirs may still run
    std::vector<std::thread> m_threads;
    std::shared_ptr<std::atomic<bool>> m_cancel = std::make_shared<std::atomic<bool>>(false);
    // Several servers: the version of each shared record this server has applied, and whether that
    // was a delete; the last report written per model (written again on a new state, else each second).
    struct Applied {
        std::int64_t version = 0;
        bool removed = false;
    };
    std::map<std::string, Applied> m_applied;
    std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> m_reported;
    std::thread m_sync;
    std::condition_variable m_syncWake;
    bool m_syncStop = false;
};

// "owner/name" with the hub's allowed characters.
bool isHubRepoId(const std::string& id);

}  // namespace easel::models
