#pragma once
// The real backend (accounts, queue, workers, HTTP server on an ephemeral loopback port) inside the
// desktop e2e test process, over a fake generator. The server answers on its own threads, so the tests
// keep the Qt event loop spinning (waitFor) and never block the UI thread on it.

#include <QUrl>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "app/backend.h"
#include "fake_clock.h"
#include "fake_generator.h"
#include "server/http_server.h"
#include "temp_dir.h"

namespace easel::testing {

// What reached the generator for one job: the parsed parameters and the decoded input images.
struct GeneratorCall {
    jobs::GenerationParams params;
    std::optional<jobs::Bytes> init;
    std::optional<jobs::Bytes> mask;
};

// FakeGenerator's images and hooks, plus a record of every call (FakeGenerator keeps only prompts).
class RecordingGenerator final : public jobs::ImageGenerator {
public:
    explicit RecordingGenerator(FakeGenerator& fake) : m_fake(fake) {}
    std::vector<jobs::ModelDescription> models() const override { return m_fake.models(); }
    std::optional<jobs::ModelDescription> defaultModel() const override { return m_fake.defaultModel(); }
    jobs::GeneratedImages generate(const jobs::GenerationParams& p, const jobs::Bytes* init, const jobs::Bytes* mask,
                                   const jobs::ProgressCallback& progress) override {
        {
            std::lock_guard lock(m_mutex);
            GeneratorCall call{p, std::nullopt, std::nullopt};
            if (init != nullptr) call.init = *init;
            if (mask != nullptr) call.mask = *mask;
            m_calls.push_back(std::move(call));
        }
        return m_fake.generate(p, init, mask, progress);
    }
    jobs::ModelDescription addModel(const std::string& id, const std::filesystem::path& path,
                                    std::int64_t ownerId) override {
        return m_fake.addModel(id, path, ownerId);
    }
    bool removeModel(const std::string& id) override { return m_fake.removeModel(id); }
    std::vector<GeneratorCall> calls() const {
        std::lock_guard lock(m_mutex);
        return m_calls;
    }

private:
    FakeGenerator& m_fake;
    mutable std::mutex m_mutex;
    std::vector<GeneratorCall> m_calls;
};

class DesktopBackend {
public:
    DesktopBackend() {
        config.dataDir = dir.path() / "data";
        config.passwordCost = accounts::PasswordCost::fastForTests();
        config.clock = &clock;
        config.maintenanceSeconds = 3600;
        backend = std::make_unique<app::Backend>(config, generator);
        backend->start();
        server::HttpServerOptions options;
        options.port = 0;
        http = std::make_unique<server::HttpServer>(options, backend->makeRouter("e2e", "cpu"));
        http->start();
    }
    ~DesktopBackend() {
        fake.release();  // a blocked job would keep the workers from stopping
        fake.resume();
        http->stop();
        backend->stop();
    }
    DesktopBackend(const DesktopBackend&) = delete;
    DesktopBackend& operator=(const DesktopBackend&) = delete;

    QUrl url() const { return QUrl(QStringLiteral("http://127.0.0.1:%1").arg(http->port())); }
    // The account's charged images, straight from the database (not through the UI under test).
    std::int64_t imagesUsed(const std::string& email) const {
        for (const auto& user : backend->accounts().listUsers()) {
            if (user.email == email) return user.imagesUsed;
        }
        return -1;
    }
    // Moves the fake clock to the last second of the current rate-limit minute.
    void toEndOfMinute() { clock.set(clock.nowSeconds() - clock.nowSeconds() % 60 + 59); }
    // Moves the fake clock into the next rate-limit minute.
    void nextMinute() { clock.advance(60); }

    TempDir dir;
    FakeClock clock;
    FakeGenerator fake;
    RecordingGenerator generator{fake};
    app::BackendConfig config;
    std::unique_ptr<app::Backend> backend;
    std::unique_ptr<server::HttpServer> http;
};

}  // namespace easel::testing
