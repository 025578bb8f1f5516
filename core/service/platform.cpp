#include "service/platform.h"

#include <unistd.h>

#include <iostream>

#include "accounts/plans.h"
#include "storage/migrations.h"
#include "storage/s3_blob_store.h"
#include "storage/user_repository.h"

namespace easel::service {
namespace {

std::filesystem::path prepared(const std::filesystem::path& dataDir) {
    std::filesystem::create_directories(dataDir);
    return dataDir;
}

jobs::TrainingRunnerOptions trainingFiles(const PlatformConfig& config, storage::BlobStore& blobs,
                                          const jobs::JobRunner& runner) {
    jobs::TrainingRunnerOptions o;
    o.trainingDir = config.dataDir / "training";
    o.modelsDir = config.dataDir / "models";  // where the model installer puts models too (addInstalled reads both)
    if (!config.database.empty()) {
        // Several servers: the trainings submitted here run on this machine and data dir (servers that
        // share the data dir share its trainings too). Stable across restarts, unlike the worker id.
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        std::error_code ec;
        const auto dir = std::filesystem::weakly_canonical(std::filesystem::absolute(config.dataDir), ec);
        o.home = std::string(host) + ":" + (ec ? config.dataDir.string() : dir.string());
        // Trainings submitted to a server without a trainer, and trained models, go through the blob store.
        o.sharedBlobs = &blobs;
        // A running training holds a lease that this server's heartbeat renews; other servers take over
        // the trainings of a server that died.
        o.leaseOwner = runner.workerId();
        o.leaseSeconds = config.runner.leaseSeconds;
    }
    return o;
}

// A shared database (PostgreSQL) may have other servers' jobs running: recover only expired leases.
jobs::JobRunnerOptions runnerOptions(const PlatformConfig& config) {
    auto o = config.runner;
    o.sharedDatabase = !config.database.empty();
    return o;
}

// Several servers: login attempts are counted in the shared database too.
accounts::AccountOptions accountOptions(const PlatformConfig& config) {
    auto o = config.accounts;
    o.sharedRateLimits = !config.database.empty();
    return o;
}

std::unique_ptr<storage::BlobStore> openBlobStore(const PlatformConfig& config) {
    if (config.blobStore.empty()) return std::make_unique<storage::FileBlobStore>(config.dataDir / "files");
    if (!storage::isS3Url(config.blobStore)) {
        throw std::invalid_argument("the blob store must be an s3:// URL (or empty for <data dir>/files)");
    }
    return std::make_unique<storage::S3BlobStore>(storage::parseS3Url(config.blobStore));
}

}  // namespace

AccountsCore::AccountsCore(const PlatformConfig& config)
    : m_clock(config.clock != nullptr ? config.clock : &m_systemClock),
      m_db(config.database.empty() ? prepared(config.dataDir) / "easel.db"
                                   : (prepared(config.dataDir), std::filesystem::path(config.database))),
      m_vault(accounts::KeyVault::openOrCreate(config.dataDir / "server.key")),
      m_hasher(config.passwordCost),
      m_blobs(openBlobStore(config)),
      m_accounts(m_db, m_hasher, m_vault, *m_blobs, *m_clock, accountOptions(config)) {
    storage::migrate(m_db);
}

Platform::Platform(PlatformConfig config, jobs::ImageGenerator& generator, jobs::ModelTrainer* trainer)
    : m_config(std::move(config)),
      m_generator(generator),
      m_core(m_config),
      m_access(m_core.accounts(), m_core.clock(), m_config.database.empty() ? nullptr : &m_core.db()),
      m_runner(m_core.db(), m_core.blobs(), generator, m_core.clock(), runnerOptions(m_config),
               [this](std::int64_t userId) { return concurrencyOf(userId); }),
      m_generation(m_core.db(), m_core.blobs(), m_runner, generator, m_core.clock(), m_config.generation),
      m_canTrain(trainer != nullptr),
      m_trainingRunner(m_core.db(), generator, trainer != nullptr ? *trainer : m_noTrainer, m_core.clock(),
                       trainingFiles(m_config, m_core.blobs(), m_runner),
                       [this](std::int64_t userId) { return concurrencyOf(userId); }),
      m_training(m_core.db(), m_trainingRunner, generator, m_generation, m_core.clock(), {m_canTrain}),
      m_publicUrl(m_config.publicUrl) {
    m_core.accounts().addPurgeHook([this](std::int64_t userId) {
        m_runner.cancelAllOf(userId);
        m_training.purge(userId);  // its trainings stop, their folders and trained models go
        if (m_notifier != nullptr) m_notifier->forgetAccount(userId);
    });
    m_runner.setFinishedHook([this](const storage::JobRow& job) { jobFinished(job); });
    m_trainingRunner.setStageHook(
        [this](const storage::JobRow& job, const std::string& stage) { trainingChanged(job, stage); });
}

Platform::~Platform() { stop(); }

int Platform::concurrencyOf(std::int64_t userId) {
    // Read per claim, so a plan change applies from the next job on.
    const auto row = storage::UserRepository(m_core.db()).findById(userId);
    const auto* plan = row ? accounts::findPlan(row->plan) : nullptr;
    return plan != nullptr ? plan->maxConcurrent : 1;
}

void Platform::jobFinished(const storage::JobRow& job) {
    if (m_notifier == nullptr || job.webhook.empty()) return;
    // A job stopped by an account deletion sends nothing: the account and its data are going.
    const auto owner = storage::UserRepository(m_core.db()).findById(job.userId);
    if (!owner || owner->deleting) return;
    const auto view = m_generation.view(job);
    // The address the client used to reach us; the listening address only for jobs stored before
    // that was recorded (it is loopback or a wildcard, which a remote receiver cannot open).
    std::string base = view.params.linkBase;
    if (base.empty()) {
        std::lock_guard lock(m_mutex);
        base = m_publicUrl;
    }
    m_notifier->jobFinished(job.userId, job.webhook, view, base.empty() ? "http://127.0.0.1:7860" : base);
}

void Platform::trainingChanged(const storage::JobRow& job, const std::string& stage) {
    if (m_notifier == nullptr || job.webhook.empty()) return;
    const auto owner = storage::UserRepository(m_core.db()).findById(job.userId);
    if (!owner || owner->deleting) return;
    auto view = m_training.view(job);
    view.stage = stage;  // the stage this call is about, whatever the job has moved on to since
    m_notifier->trainingChanged(job.userId, job.webhook, view);
}

void Platform::setPublicUrl(std::string url) {
    std::lock_guard lock(m_mutex);
    if (m_config.publicUrl.empty()) m_publicUrl = std::move(url);
}

void Platform::start() {
    sweep();
    m_runner.start();
    // Without a trainer the queued trainings wait for a server that has one.
    if (m_canTrain) m_trainingRunner.start();
    if (!m_config.database.empty()) {
        // Other servers' new jobs and cancels wake this one at once (its workers also poll).
        m_listener = std::make_unique<storage::NotificationListener>(
            m_config.database, std::vector<std::string>{storage::kJobsQueuedChannel, storage::kCancelChannel},
            [this](const std::string& channel) {
                if (channel == storage::kCancelChannel) {
                    m_runner.wakeHeartbeat();
                } else {
                    m_runner.notify();
                    if (m_canTrain) m_trainingRunner.notify();
                }
            });
    }
    m_maintenance = std::thread([this] {
        // Not before start() returns: it walks every stored file, and what it removes is an hour old anyway.
        sweepOrphans();
        std::unique_lock lock(m_mutex);
        while (!m_wake.wait_for(lock, std::chrono::seconds(m_config.maintenanceSeconds), [&] { return m_stopping; })) {
            lock.unlock();
            sweep();
            sweepOrphans();
            lock.lock();
        }
    });
}

void Platform::stop() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    if (m_maintenance.joinable()) m_maintenance.join();
    m_listener.reset();
    m_trainingRunner.stop();
    m_runner.stop();
}

void Platform::sweep() {
    try {
        const int purged = m_core.accounts().sweep();
        const int expired = m_runner.sweepExpired();
        if (purged > 0 || expired > 0) {
            std::cout << "easel: maintenance purged " << purged << " account(s), " << expired << " expired image(s)"
                      << std::endl;
        }
    } catch (const std::exception& e) {
        std::cerr << "easel: maintenance: " << e.what() << std::endl;
    }
}

void Platform::sweepOrphans() {
    try {
        if (const int orphans = m_runner.sweepOrphans(); orphans > 0)
            std::cout << "easel: maintenance removed " << orphans << " orphaned file(s)" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "easel: maintenance: " << e.what() << std::endl;
    }
}

}  // namespace easel::service
