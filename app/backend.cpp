#include "backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "account_controller.h"
#include "admin_controller.h"
#include "common/random_token.h"
#include "generation_codec.h"
#include "generation_controller.h"
#include "health_controller.h"
#include "storage/migrations.h"

namespace easel::app {
namespace {

std::filesystem::path prepared(const std::filesystem::path& dataDir) {
    std::filesystem::create_directories(dataDir);
    return dataDir;
}

}  // namespace

AccountsCore::AccountsCore(const BackendConfig& config)
    : m_clock(config.clock != nullptr ? config.clock : &m_systemClock),
      m_db(prepared(config.dataDir) / "easel.db"),
      m_vault(accounts::KeyVault::openOrCreate(config.dataDir / "server.key")),
      m_hasher(config.passwordCost),
      m_blobs(config.dataDir / "files"),
      m_accounts(m_db, m_hasher, m_vault, m_blobs, *m_clock, config.accounts) {
    storage::migrate(m_db);
}

Backend::Backend(BackendConfig config, jobs::ImageGenerator& generator)
    : m_config(std::move(config)),
      m_generator(generator),
      m_core(m_config),
      m_access(m_core.accounts(), m_core.clock()),
      m_runner(m_core.db(), m_core.blobs(), generator, m_core.clock(), m_config.runner,
               [this](std::int64_t userId) {
                   // Read per claim, so a plan change applies from the next job on.
                   const auto row = storage::UserRepository(m_core.db()).findById(userId);
                   const auto* plan = row ? accounts::findPlan(row->plan) : nullptr;
                   return plan != nullptr ? plan->maxConcurrent : 1;
               }),
      m_generation(m_core.db(), m_core.blobs(), m_runner, generator, m_core.clock(), m_config.generation) {
    m_core.accounts().addPurgeHook([this](std::int64_t userId) {
        m_runner.cancelAllOf(userId);
        m_webhooks->forget(userId);
    });
    m_publicUrl = m_config.publicUrl;
    server::ModelInstallOptions install;
    install.modelsDir = m_config.dataDir / "models";
    install.hubUrl = m_config.hubUrl;
    install.policy.allowPrivateAddresses = m_config.allowPrivateDownloads;
    m_installer = std::make_unique<server::ModelInstaller>(install, generator);
    m_webhooks = std::make_unique<server::WebhookSender>(
        m_config.webhooks, [this](std::int64_t userId) { return m_core.accounts().webhookSecret(userId); },
        [this] { return m_core.clock().nowSeconds(); });
    m_runner.setFinishedHook([this](const storage::JobRow& job) {
        if (job.webhook.empty()) return;
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
        auto body = server::jobJson(view, base.empty() ? "http://127.0.0.1:7860" : base, m_generation, false);
        body["webhook_type"] = "generation";
        m_webhooks->enqueue(job.userId, job.webhook, body.dump());
    });
}

void Backend::setPublicUrl(std::string url) {
    std::lock_guard lock(m_mutex);
    if (m_config.publicUrl.empty()) m_publicUrl = std::move(url);
}

Backend::~Backend() { stop(); }

void Backend::start() {
    sweep();
    m_runner.start();
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

void Backend::stop() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    if (m_maintenance.joinable()) m_maintenance.join();
    m_installer->join();
    m_runner.stop();
}

void Backend::sweep() {
    try {
        const int purged = m_core.accounts().sweep();
        const int expired = m_runner.sweepExpired();
        if (purged > 0 || expired > 0) {
            std::cout << "easel-server: maintenance purged " << purged << " account(s), " << expired
                      << " expired image(s)" << std::endl;
        }
    } catch (const std::exception& e) {
        std::cerr << "easel-server: maintenance: " << e.what() << std::endl;
    }
}

void Backend::sweepOrphans() {
    try {
        if (const int orphans = m_runner.sweepOrphans(); orphans > 0)
            std::cout << "easel-server: maintenance removed " << orphans << " orphaned file(s)" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "easel-server: maintenance: " << e.what() << std::endl;
    }
}

server::Router Backend::makeRouter(const std::string& version, const std::string& device) {
    server::Router router;
    const auto model = m_generator.defaultModel();
    server::registerHealthRoutes(router, {version, device, model ? model->id : std::string()});
    server::registerAccountRoutes(router, m_access);
    server::registerGenerationRoutes(router, m_access, m_generation,
                                     {m_config.publicUrl, m_config.allowPrivateImageUrls});
    server::registerAdminRoutes(router, m_access, m_generation, m_runner, *m_installer, device);
    return router;
}

DesktopOwner ensureDesktopOwner(Backend& backend, const std::filesystem::path& dataDir) {
    const auto file = dataDir / "desktop-owner.json";
    DesktopOwner owner;
    std::string password;
    if (std::filesystem::exists(file)) {
        std::ifstream in(file);
        const auto j = nlohmann::json::parse(in, nullptr, false);
        if (j.is_discarded() || !j.contains("email") || !j.contains("password")) {
            throw std::runtime_error(file.string() + " is damaged; remove it to create a new local account");
        }
        owner.email = j["email"];
        password = j["password"];
    } else {
        owner.email = "owner@easel.local";
        password = randomToken();
        backend.accounts().createUser(owner.email, password, "premium", true);
        const auto tmp = file.string() + ".tmp";
        ::unlink(tmp.c_str());
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);  // private from the start
        if (fd < 0) throw std::runtime_error("cannot create " + tmp);
        const auto text = nlohmann::json{{"email", owner.email}, {"password", password}}.dump() + "\n";
        const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        ::close(fd);
        if (!ok) throw std::runtime_error("cannot write " + tmp);
        std::filesystem::rename(tmp, file);
    }
    owner.sessionToken = backend.accounts().login(owner.email, password, "127.0.0.1");
    const auto caller = backend.accounts().authenticateToken(owner.sessionToken);
    owner.apiKey = backend.accounts().viewKey(caller.userId, password);
    return owner;
}

}  // namespace easel::app
