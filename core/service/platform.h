#pragma once
// The session object (Transmission's tr_session): storage, accounts, the job queue and its workers,
// generation and maintenance, wired once and shared by easel-server, the desktop app's bundled
// backend, the admin CLI and the tests. The policies live here: how many jobs a plan runs at once,
// who is told about a finished job, when expired images and deleted accounts are swept. Front-ends
// (the HTTP server, app/) only add transport and start it. Torch-free: inference comes in as a
// jobs::ImageGenerator and, for fine-tuning, a jobs::ModelTrainer (work folders under
// <data dir>/training, trained models under <data dir>/models).

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "accounts/account_service.h"
#include "accounts/crypto.h"
#include "common/clock.h"
#include "jobs/job_runner.h"
#include "jobs/model_trainer.h"
#include "jobs/training_runner.h"
#include "service/access_control.h"
#include "service/generation_service.h"
#include "service/job_notifier.h"
#include "service/training_service.h"
#include "storage/blob_store.h"
#include "storage/database.h"
#include "storage/notifications.h"

namespace easel::service {

struct PlatformConfig {
    std::filesystem::path dataDir = "easel-data";
    // Where accounts, quotas and the job queue live: empty for SQLite at <data dir>/easel.db, or a
    // postgresql:// URL (storage::Database) that many server processes share.
    std::string database;
    // Where images and uploads live: empty for <data dir>/files, or an s3:// URL
    // (storage/s3_blob_store.h) that many server processes share.
    std::string blobStore;
    accounts::AccountOptions accounts;
    accounts::PasswordCost passwordCost;
    jobs::JobRunnerOptions runner;
    GenerationOptions generation;
    // Base of the links in webhook payloads for jobs stored before the caller's address was kept.
    std::string publicUrl;
    const Clock* clock = nullptr;  // nullptr: the system clock
    int maintenanceSeconds = 60;   // how often expired images and interrupted purges are swept
};

// The stores and the accounts, no workers: what the admin CLI needs (it may run beside the server).
class AccountsCore {
public:
    explicit AccountsCore(const PlatformConfig& config);
    const Clock& clock() const { return *m_clock; }
    storage::Database& db() { return m_db; }
    storage::BlobStore& blobs() { return *m_blobs; }
    accounts::AccountService& accounts() { return m_accounts; }

private:
    SystemClock m_systemClock;
    const Clock* m_clock;
    storage::Database m_db;
    accounts::KeyVault m_vault;
    accounts::PasswordHasher m_hasher;
    std::unique_ptr<storage::BlobStore> m_blobs;
    accounts::AccountService m_accounts;
};

class Platform {
public:
    // Without a trainer, fine-tunes are refused (503) and none runs.
    Platform(PlatformConfig config, jobs::ImageGenerator& generator, jobs::ModelTrainer* trainer = nullptr);
    ~Platform();
    Platform(const Platform&) = delete;
    Platform& operator=(const Platform&) = delete;

    // Who hears about finished jobs (none by default); set before start().
    void setNotifier(JobNotifier* notifier) { m_notifier = notifier; }
    // Base of webhook links when PlatformConfig::publicUrl is empty (the listening address).
    void setPublicUrl(std::string url);

    // Recovers interrupted jobs and purges, starts the workers and the maintenance thread.
    void start();
    // The first step of a shutdown: requests waiting for their job are answered now.
    void beginShutdown() { m_runner.releaseWaiters(); }
    void stop();
    // One maintenance pass: interrupted account purges and expired images (tests call it after
    // moving a fake clock).
    void sweep();
    // Files a crash left without a row; walks every stored file, so only on the maintenance thread.
    void sweepOrphans();

    const PlatformConfig& config() const { return m_config; }
    const Clock& clock() const { return m_core.clock(); }
    storage::Database& db() { return m_core.db(); }
    accounts::AccountService& accounts() { return m_core.accounts(); }
    storage::BlobStore& blobs() { return m_core.blobs(); }
    AccessControl& access() { return m_access; }
    jobs::JobRunner& runner() { return m_runner; }
    GenerationService& generation() { return m_generation; }
    jobs::TrainingRunner& trainingRunner() { return m_trainingRunner; }
    TrainingService& training() { return m_training; }
    jobs::ImageGenerator& generator() { return m_generator; }

private:
    // How many jobs of this user run at once: the plan's max_concurrent, read per claim.
    int concurrencyOf(std::int64_t userId);
    void jobFinished(const storage::JobRow& job);
    void trainingChanged(const storage::JobRow& job, const std::string& stage);

    PlatformConfig m_config;
    jobs::ImageGenerator& m_generator;
    AccountsCore m_core;
    AccessControl m_access;
    jobs::JobRunner m_runner;
    GenerationService m_generation;
    jobs::UnavailableTrainer m_noTrainer;
    bool m_canTrain;
    jobs::TrainingRunner m_trainingRunner;
    TrainingService m_training;
    JobNotifier* m_notifier = nullptr;
    std::string m_publicUrl;
    std::thread m_maintenance;
    std::unique_ptr<storage::NotificationListener> m_listener;  // a shared (PostgreSQL) database only
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
DesktopOwner ensureDesktopOwner(accounts::AccountService& accounts, const std::filesystem::path& dataDir);

}  // namespace easel::service
