#pragma once
// The backend's object graph, wired once for easel-server, the desktop app's bundled backend, the
// admin CLI and the integration tests. Torch-free: inference comes in as a jobs::ImageGenerator.

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "accounts/account_service.h"
#include "common/clock.h"
#include "jobs/job_runner.h"
#include "model_installer.h"
#include "router.h"
#include "service/access_control.h"
#include "service/generation_service.h"
#include "storage/blob_store.h"
#include "storage/database.h"
#include "webhook_sender.h"

namespace easel::app {

struct BackendConfig {
    std::filesystem::path dataDir = "easel-data";
    accounts::AccountOptions accounts;
    accounts::PasswordCost passwordCost;
    jobs::JobRunnerOptions runner;
    service::GenerationOptions generation;
    std::string publicUrl;
    server::WebhookOptions webhooks;
    std::string hubUrl = "https://huggingface.co";  // like HF_ENDPOINT
    bool allowPrivateDownloads = false;             // model URLs on private / loopback addresses
    bool allowPrivateImageUrls = false;  // users' init_image / mask_image links to private / loopback addresses
    const Clock* clock = nullptr;        // nullptr: the system clock
    int maintenanceSeconds = 60;         // how often expired images and interrupted purges are swept
};

// What the admin CLI needs: the database and the accounts, no workers.
class AccountsCore {
public:
    explicit AccountsCore(const BackendConfig& config);
    const Clock& clock() const { return *m_clock; }
    storage::Database& db() { return m_db; }
    storage::BlobStore& blobs() { return m_blobs; }
    accounts::AccountService& accounts() { return m_accounts; }

private:
    SystemClock m_systemClock;
    const Clock* m_clock;
    storage::Database m_db;
    accounts::KeyVault m_vault;
    accounts::PasswordHasher m_hasher;
    storage::FileBlobStore m_blobs;
    accounts::AccountService m_accounts;
};

class Backend {
public:
    Backend(BackendConfig config, jobs::ImageGenerator& generator);
    ~Backend();

    // Recovers interrupted jobs and purges, starts the workers and the maintenance thread.
    void start();
    void stop();
    // One maintenance pass (tests call this after moving a fake clock).
    void sweep();
    // Files a crash left without a row (JobRunner::sweepOrphans); on the maintenance thread only.
    void sweepOrphans();

    // Every REST route; `version` and `device` go to /health.
    server::Router makeRouter(const std::string& version, const std::string& device);

    accounts::AccountService& accounts() { return m_core.accounts(); }
    service::GenerationService& generation() { return m_generation; }
    jobs::JobRunner& runner() { return m_runner; }
    storage::Database& db() { return m_core.db(); }
    server::WebhookSender& webhooks() { return *m_webhooks; }
    server::ModelInstaller& installer() { return *m_installer; }
    // Base of the links in webhook payloads when BackendConfig::publicUrl is empty.
    void setPublicUrl(std::string url);

private:
    BackendConfig m_config;
    jobs::ImageGenerator& m_generator;
    AccountsCore m_core;
    service::AccessControl m_access;
    jobs::JobRunner m_runner;
    service::GenerationService m_generation;
    std::unique_ptr<server::WebhookSender> m_webhooks;
    std::unique_ptr<server::ModelInstaller> m_installer;
    std::string m_publicUrl;
    std::thread m_maintenance;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_stopping = false;
};

// The desktop app's local mode: an owner account (admin, premium) created on the first launch; its
// random password is kept in <data dir>/desktop-owner.json (0600). Returns a fresh session and the key.
struct DesktopOwner {
    std::string email;
    std::string sessionToken;
    std::string apiKey;
};
DesktopOwner ensureDesktopOwner(Backend& backend, const std::filesystem::path& dataDir);

}  // namespace easel::app
