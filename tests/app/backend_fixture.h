#pragma once
// The real backend (accounts, queue, workers, HTTP server on an ephemeral loopback port) over a fake
// generator, a fake trainer and a fake clock; its database is SQLite in the data dir, or with
// EASEL_TEST_DATABASE=postgresql a fresh schema on the test PostgreSQL server; its blobs are files in
// the data dir, or with EASEL_TEST_BLOB_STORE=s3 a fresh prefix in the test S3 server's bucket.

#include <gtest/gtest.h>

#include <memory>

#include "app/backend.h"
#include "fake_clock.h"
#include "fake_generator.h"
#include "fake_trainer.h"
#include "http_client.h"
#include "postgres_server.h"
#include "s3_server.h"
#include "server/http_server.h"
#include "temp_dir.h"

namespace easel::testing {

class BackendTest : public ::testing::Test {
protected:
    void SetUp() override {
        config.dataDir = dir.path() / "data";
        if (testsUsePostgres()) {
            config.database = PostgresServer::shared().freshSchemaUrl();
            config.runner.leaseSeconds = 3;  // a dead server's jobs come back after 3 s of the fake clock
        }
        if (testsUseS3() && config.blobStore.empty()) {  // unless the test set one
            S3Server::exportCredentials();
            config.blobStore = S3Server::shared().freshUrl();
        }
        config.passwordCost = accounts::PasswordCost::fastForTests();
        config.clock = &clock;
        config.generation.syncWait = std::chrono::milliseconds(5000);
        config.maintenanceSeconds = 3600;
        start();
    }
    void TearDown() override {
        generator.release();
        trainer.resume();
        stop();
    }
    void start() {
        backend = std::make_unique<app::Backend>(config, generator, &trainer);
        backend->start();
        auto o = httpOptions;
        o.port = 0;
        http = std::make_unique<server::HttpServer>(o, backend->makeRouter("test", "cpu"));
        http->start();
        port = http->port();
    }
    void stop() {
        if (http) http->stop();
        if (backend) backend->stop();
        http.reset();
        backend.reset();
    }

    HttpResult post(const std::string& path, const nlohmann::json& body,
                    const std::map<std::string, std::string>& h = {}) {
        return postJson(port, path, body, h);
    }
    HttpResult get(const std::string& path, const std::map<std::string, std::string>& h = {}) {
        return httpRequest(port, "GET", path, {}, h);
    }
    // A fresh account; returns the sign-up JSON (user_id, api_key, ...).
    nlohmann::json signup(const std::string& email, const std::string& password = "correct horse") {
        const auto r = post("/api/v1/auth/signup", {{"email", email}, {"password", password}});
        EXPECT_EQ(r.status, 201) << r.body;
        return r.json();
    }
    std::string login(const std::string& email, const std::string& password = "correct horse") {
        const auto r = post("/api/v1/auth/login", {{"email", email}, {"password", password}});
        EXPECT_EQ(r.status, 200) << r.body;
        return r.json().value("token", "");
    }
    HttpResult text2img(const std::string& key, nlohmann::json extra = nlohmann::json::object()) {
        nlohmann::json body{{"key", key}, {"prompt", "a red circle"}};
        body.update(extra);
        return post("/api/v6/images/text2img", body);
    }
    // What storage::Database opens to look at the rows beside the server.
    std::filesystem::path databaseLocation() const {
        return config.database.empty() ? config.dataDir / "easel.db" : std::filesystem::path(config.database);
    }
    storage::BlobStore& blobs() { return backend->platform().blobs(); }
    // Moves past the current rate-limit window.
    void nextMinute() { clock.advance(60); }

    TempDir dir;
    FakeClock clock;
    FakeGenerator generator;
    FakeTrainer trainer;
    app::BackendConfig config;
    server::HttpServerOptions httpOptions;  // the port is always an ephemeral one
    std::unique_ptr<app::Backend> backend;
    std::unique_ptr<server::HttpServer> http;
    std::uint16_t port = 0;
};

}  // namespace easel::testing
