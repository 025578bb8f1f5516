#pragma once
// The composition root shared by easel-server, the desktop app's bundled backend and the
// integration tests: the core's Platform (all domain policy) plus the HTTP-facing pieces (webhook
// delivery, the model installer, the route table). Wiring only; no decisions live here.

#include <chrono>
#include <memory>
#include <string>

#include "app/app_args.h"
#include "models/model_installer.h"
#include "net/outbound_pool.h"
#include "server/job_webhooks.h"
#include "server/router.h"
#include "server/webhook_sender.h"
#include "service/platform.h"

namespace easel::app {

// --database, else $EASEL_DATABASE_URL: a postgresql:// URL, or "" for SQLite in the data dir.
// UsageError for anything else.
std::string databaseOption(const ArgList& args);
// --blob-store, else $EASEL_BLOB_STORE: an s3:// URL (storage/s3_blob_store.h) with the credentials in
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or "" for <data dir>/files. UsageError when malformed.
std::string blobStoreOption(const ArgList& args);

struct BackendConfig : service::PlatformConfig {
    server::WebhookOptions webhooks;
    net::OutboundPoolOptions outbound;              // users' image URLs and webhooks
    std::string hubUrl = "https://huggingface.co";  // like HF_ENDPOINT
    bool allowPrivateDownloads = false;             // model URLs on private / loopback addresses
    bool allowPrivateImageUrls = false;  // users' init_image / mask_image links to private / loopback addresses
    std::chrono::milliseconds imageFetchTimeout{std::chrono::seconds(20)};  // such a link, fetched
};

class Backend {
public:
    // `trainer`: fine-tuning (nullptr: the server refuses fine_tune and lora_fine_tune with 503).
    Backend(BackendConfig config, jobs::ImageGenerator& generator, jobs::ModelTrainer* trainer = nullptr);
    ~Backend();

    void start() { m_platform.start(); }
    // The first step of a shutdown, before the HTTP server joins its workers: outbound fetches and
    // downloads are cancelled and requests waiting for their job are answered, so nothing holds a
    // worker. stop() does it too.
    void beginShutdown();
    void stop();
    void sweep() { m_platform.sweep(); }
    void sweepOrphans() { m_platform.sweepOrphans(); }

    // Every REST route; `version` and `device` go to /health.
    server::Router makeRouter(const std::string& version, const std::string& device);
    // A worker server's routes (easel-server --role worker): /health and /metrics only; clients use
    // the API servers.
    server::Router makeWorkerRouter(const std::string& version, const std::string& device);

    service::Platform& platform() { return m_platform; }
    accounts::AccountService& accounts() { return m_platform.accounts(); }
    service::GenerationService& generation() { return m_platform.generation(); }
    service::TrainingService& training() { return m_platform.training(); }
    jobs::JobRunner& runner() { return m_platform.runner(); }
    storage::Database& db() { return m_platform.db(); }
    server::WebhookSender& webhooks() { return *m_webhooks; }
    net::OutboundPool& outbound() { return *m_outbound; }
    models::ModelInstaller& installer() { return *m_installer; }
    void setPublicUrl(std::string url) { m_platform.setPublicUrl(std::move(url)); }

private:
    BackendConfig m_config;
    service::Platform m_platform;
    std::unique_ptr<net::OutboundPool> m_outbound;  // before the sender, which posts to it
    std::unique_ptr<server::WebhookSender> m_webhooks;
    std::unique_ptr<server::JobWebhooks> m_jobWebhooks;
    std::unique_ptr<models::ModelInstaller> m_installer;
};

}  // namespace easel::app
