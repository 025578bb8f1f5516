#include "app/backend.h"

#include <cstdlib>

#include "common/service_error.h"
#include "server/a1111_controller.h"
#include "server/account_controller.h"
#include "server/admin_controller.h"
#include "server/generation_controller.h"
#include "server/health_controller.h"
#include "server/metrics_controller.h"
#include "server/model_controller.h"
#include "server/openai_controller.h"
#include "server/training_controller.h"
#include "storage/s3_blob_store.h"

namespace easel::app {

std::string databaseOption(const ArgList& args) {
    const char* env = std::getenv("EASEL_DATABASE_URL");
    const std::string url = args.value("--database").value_or(env != nullptr ? env : "");
    if (!url.empty() && !storage::Database::isPostgresUrl(url)) {
        throw UsageError(
            "--database takes a postgresql:// URL (without it the database is <data dir>/easel.db), got '" +
            storage::Database::describe(url) + "'");
    }
    return url;
}

std::string blobStoreOption(const ArgList& args) {
    const char* env = std::getenv("EASEL_BLOB_STORE");
    const std::string url = args.value("--blob-store").value_or(env != nullptr ? env : "");
    if (url.empty()) return url;
    try {
        storage::parseS3Url(url);  // the URL and the credentials, checked before anything starts
    } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--blob-store: ") + e.what());
    }
    return url;
}

Backend::Backend(BackendConfig config, jobs::ImageGenerator& generator, jobs::ModelTrainer* trainer)
    : m_config(std::move(config)), m_platform(m_config, generator, trainer) {
    m_outbound = std::make_unique<net::OutboundPool>(m_config.outbound);
    m_webhooks = std::make_unique<server::WebhookSender>(
        m_config.webhooks, [this](std::int64_t userId) { return m_platform.accounts().webhookSecret(userId); },
        m_platform.clock(), *m_outbound);
    m_jobWebhooks = std::make_unique<server::JobWebhooks>(*m_webhooks, m_platform.generation());
    m_platform.setNotifier(m_jobWebhooks.get());
    models::ModelInstallOptions install;
    install.modelsDir = m_config.dataDir / "models";
    install.hubUrl = m_config.hubUrl;
    install.policy.allowPrivateAddresses = m_config.allowPrivateDownloads;
    if (!m_config.database.empty()) {
        // Several servers: loads and deletes go through the database to every generating server.
        install.sharedDb = &m_platform.db();
        install.workerId = m_platform.runner().workerId();
        install.installsHere = m_config.runner.workers > 0;
        install.blobs = &m_platform.blobs();  // where models trained on another server are published
    }
    m_installer = std::make_unique<models::ModelInstaller>(install, generator);
    // Deleting an account deletes the LoRAs and embeddings it loaded for itself.
    m_platform.accounts().addPurgeHook([this](std::int64_t userId) { m_installer->removeOwnedBy(userId); });
}

Backend::~Backend() { stop(); }

void Backend::beginShutdown() {
    m_outbound->stop();
    m_installer->cancel();
    m_platform.beginShutdown();
}

void Backend::stop() {
    beginShutdown();
    m_installer->join();
    m_platform.stop();
}

server::Router Backend::makeRouter(const std::string& version, const std::string& device) {
    server::Router router;
    const auto model = m_platform.generator().defaultModel();
    server::registerHealthRoutes(router, {version, device, model ? model->id : std::string()});
    server::registerAccountRoutes(router, m_platform.access());
    server::registerGenerationRoutes(
        router, m_platform.access(), m_platform.generation(),
        {m_config.publicUrl, m_config.allowPrivateImageUrls, m_outbound.get(), m_config.imageFetchTimeout});
    server::registerModelRoutes(router, m_platform.access(), m_platform.generation(), *m_installer);
    server::registerTrainingRoutes(
        router, m_platform.access(), m_platform.training(), m_platform.generation(),
        {m_config.publicUrl, m_config.allowPrivateImageUrls, m_outbound.get(), m_config.imageFetchTimeout});
    server::registerOpenAiRoutes(router, m_platform.access(), m_platform.generation(), {m_config.publicUrl});
    server::registerMetricsRoutes(router, m_platform.access(), m_platform.generation(), m_platform.runner());
    server::registerAdminRoutes(router, m_platform.access(), m_platform.generation(), m_platform.runner(), *m_installer,
                                device);
    server::registerA1111Routes(router, m_platform.access(), m_platform.generation());
    // Lets the server refuse a large body with a bad header key before reading it.
    router.setCredentialCheck([&accounts = m_platform.access().accounts()](const std::string& key) {
        try {
            accounts.authenticateKey(key);
            return true;
        } catch (const ServiceError&) {
            return false;
        }
    });
    return router;
}

server::Router Backend::makeWorkerRouter(const std::string& version, const std::string& device) {
    server::Router router;
    const auto model = m_platform.generator().defaultModel();
    server::registerHealthRoutes(router, {version, device, model ? model->id : std::string()});
    server::registerMetricsRoutes(router, m_platform.access(), m_platform.generation(), m_platform.runner());
    return router;
}

}  // namespace easel::app
