// Fine-tunes when several servers share PostgreSQL and an S3 bucket, as `--role api` / `--role worker`
// run them: the API server (no trainer, no model, the workers' catalog) takes the fine_tune, its images
// go to the bucket, a worker with a trainer takes the training (it becomes that worker's), and the
// trained model is published through the bucket to every worker, its owner's alone; its delete, taken
// by the API server, removes every copy and the published files.

#include <fstream>
#include <iterator>

#include "app/backend.h"
#include "common/base64.h"
#include "eventually.h"
#include "fake_clock.h"
#include "fake_generator.h"
#include "fake_trainer.h"
#include "http_client.h"
#include "jobs/model_catalog.h"
#include "noise_png.h"
#include "postgres_server.h"
#include "s3_server.h"
#include "server/http_server.h"
#include "storage/job_repository.h"
#include "storage/model_install_repository.h"
#include "temp_dir.h"

namespace easel::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string dataUrl(const std::vector<std::uint8_t>& bytes) { return "data:image/png;base64," + encodeBase64(bytes); }

bool has(const FakeGenerator& g, const std::string& id, std::int64_t owner) {
    const auto all = g.models();
    return std::any_of(all.begin(), all.end(), [&](const auto& m) { return m.id == id && m.ownerId == owner; });
}

std::vector<std::string> namesStartingWith(const storage::BlobStore& blobs, std::int64_t owner,
                                           const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& b : blobs.list(owner)) {
        if (b.name.rfind(prefix, 0) == 0) out.push_back(b.name);
    }
    return out;
}

std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

class SharedTrainings : public ::testing::Test {
protected:
    void SetUp() override {
        if (!testsUsePostgres()) GTEST_SKIP() << "several servers share PostgreSQL (EASEL_TEST_DATABASE=postgresql)";
        S3Server::exportCredentials();
        database = PostgresServer::shared().freshSchemaUrl();
        bucket = S3Server::shared().freshUrl();
        // The worker that trains, and one that only generates.
        trainingWorker = backend("worker-1", workerModels, &trainer, 1);
        otherWorker = backend("worker-2", otherModels, nullptr, 1);
        trainingWorker->start();
        otherWorker->start();
        // The API server: no trainer, no worker; it lists what the workers advertise.
        catalogDb.emplace(std::filesystem::path(database));
        catalog.emplace(*catalogDb, clock, 3600);
        api = backend("api", *catalog, nullptr, 0);
        api->start();
        http = std::make_unique<server::HttpServer>(server::HttpServerOptions{}, api->makeRouter("test", "none"));
        http->start();
        key =
            postJson(http->port(), "/api/v1/auth/signup", {{"email", "ada@example.com"}, {"password", "correct horse"}})
                .json()["api_key"];
        other =
            postJson(http->port(), "/api/v1/auth/signup", {{"email", "bob@example.com"}, {"password", "correct horse"}})
                .json()["api_key"];
    }
    void TearDown() override {
        trainer.resume();
        if (http) http->stop();
        for (auto* b : {api.get(), otherWorker.get(), trainingWorker.get()}) {
            if (b != nullptr) b->stop();
        }
    }
    std::unique_ptr<app::Backend> backend(const std::string& name, jobs::ImageGenerator& generator,
                                          jobs::ModelTrainer* withTrainer, int workers) {
        app::BackendConfig c;
        c.dataDir = dir.path() / name;  // no shared folder: everything goes through the database and the bucket
        c.database = database;
        c.blobStore = bucket;
        c.runner.leaseSeconds = 3;
        c.runner.workers = workers;
        c.passwordCost = accounts::PasswordCost::fastForTests();
        c.clock = &clock;
        c.generation.syncWait = 5000ms;
        c.maintenanceSeconds = 3600;
        return std::make_unique<app::Backend>(c, generator, withTrainer);
    }
    HttpResult post(const std::string& path, const json& body) { return postJson(http->port(), path, body); }
    json status(std::int64_t id) {
        return post("/api/v3/fine_tune_status/" + std::to_string(id), {{"key", key}}).json();
    }
    std::int64_t adaId() const { return storage::JobRepository(api->platform().db()).find(trainingId)->userId; }

    TempDir dir;
    FakeClock clock;
    FakeGenerator workerModels, otherModels;
    FakeTrainer trainer;
    std::string database, bucket;
    std::optional<storage::Database> catalogDb;
    std::optional<jobs::ModelCatalog> catalog;
    std::unique_ptr<app::Backend> trainingWorker, otherWorker, api;
    std::unique_ptr<server::HttpServer> http;
    std::string key, other;
    std::int64_t trainingId = 0;
};

TEST_F(SharedTrainings, AFineTuneTakenByTheApiServerTrainsOnAWorkerAndItsModelReachesEveryWorker) {
    trainer.pauseAtStep(2);
    const auto first = noisePng(16), second = noisePng(17);
    const auto r = post("/api/v3/fine_tune", {{"key", key},
                                              {"instance_prompt", "a photo of sks dog"},
                                              {"class_prompt", "a photo of a dog"},
                                              {"base_model_id", "fake-model"},
                                              {"images", json::array({dataUrl(first), dataUrl(second)})},
                                              {"max_train_steps", 4}});
    ASSERT_EQ(r.status, 200) << r.body;  // was 503 on an API server
    const auto submitted = r.json();
    ASSERT_EQ(submitted.value("status", ""), "success") << r.body;
    trainingId = submitted["training_id"].get<std::int64_t>();
    const auto modelId = submitted["model_id"].get<std::string>();
    const auto owner = adaId();
    auto& bucketBlobs = api->platform().blobs();

    // The worker with a trainer took it: it is that worker's now, with the images the API server stored.
    ASSERT_TRUE(trainer.waitPaused());
    const storage::JobRepository jobs(api->platform().db());
    const auto running = jobs.find(trainingId);
    EXPECT_EQ(running->status, storage::JobStatus::Running);
    EXPECT_NE(running->home.find((dir.path() / "worker-1").string()), std::string::npos) << running->home;
    const auto images = trainer.lastImages();
    ASSERT_EQ(images.size(), 2u);
    EXPECT_EQ(images[0].encoded, first);
    EXPECT_EQ(images[1].encoded, second);
    EXPECT_EQ(namesStartingWith(bucketBlobs, owner, "training-").size(), 2u);
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "api" / "training" / std::to_string(trainingId)));
    EXPECT_EQ(status(trainingId).value("messege", ""), "training_started");

    trainer.resume();
    json ready;
    ASSERT_TRUE(eventually(
        [&] {
            ready = status(trainingId);
            return ready.value("messege", "") == "model_ready";
        },
        20s))
        << ready.dump();
    // The inputs went with the job; the model's files are in the bucket, and every worker has it as Ada's.
    EXPECT_TRUE(eventually([&] { return namesStartingWith(bucketBlobs, owner, "training-").empty(); }));
    const auto published = namesStartingWith(bucketBlobs, owner, "model-" + modelId + "-");
    EXPECT_EQ(published.size(), 3u) << "easel-model.json, model/model.json, model/model.safetensors";
    EXPECT_TRUE(has(workerModels, modelId, owner));
    ASSERT_TRUE(eventually([&] { return has(otherModels, modelId, owner); }, 15s));
    EXPECT_EQ(read(dir.path() / "worker-2" / "models" / modelId / "model" / "model.safetensors"), "fake weights");
    EXPECT_EQ(read(dir.path() / "worker-2" / "models" / modelId / "model" / "model.json"),
              read(dir.path() / "worker-1" / "models" / modelId / "model" / "model.json"));
    // The orphan sweep keeps what a published model needs.
    otherWorker->platform().runner().sweepOrphans(0);
    EXPECT_EQ(namesStartingWith(bucketBlobs, owner, "model-" + modelId + "-").size(), 3u);

    // Ada generates with it through the API server; Bob does not see it.
    ASSERT_TRUE(eventually(
        [&] {
            const auto g =
                post("/api/v6/images/text2img", {{"key", key}, {"prompt", "sks dog"}, {"model_id", modelId}});
            return g.status == 200 && g.json().value("status", "") == "success";
        },
        15s));
    const auto refused =
        post("/api/v6/images/text2img", {{"key", other}, {"prompt", "sks dog"}, {"model_id", modelId}});
    EXPECT_EQ(refused.status, 400) << refused.body;

    // The delete, taken by the API server, reaches every worker and removes the published files.
    const auto deleted = post("/api/v3/finetune/delete/" + std::to_string(trainingId), {{"key", key}});
    EXPECT_EQ(deleted.status, 200) << deleted.body;
    EXPECT_TRUE(namesStartingWith(bucketBlobs, owner, "model-").empty());
    EXPECT_TRUE(storage::ModelInstallRepository(api->platform().db()).find(modelId)->removed);
    ASSERT_TRUE(
        eventually([&] { return !has(workerModels, modelId, owner) && !has(otherModels, modelId, owner); }, 15s));
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "worker-2" / "models" / modelId));
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "worker-1" / "models" / modelId));
}

// A training that ends before any worker takes it leaves nothing in the bucket.
TEST_F(SharedTrainings, ACancelOfAQueuedTrainingRemovesItsImagesFromTheBucket) {
    trainingWorker->stop();  // no server with a trainer is up
    const auto r = post("/api/v3/lora_fine_tune", {{"key", key},
                                                   {"instance_prompt", "a photo of sks dog"},
                                                   {"class_prompt", "a photo of a dog"},
                                                   {"base_model_id", "fake-model"},
                                                   {"images", json::array({dataUrl(noisePng(16))})},
                                                   {"max_train_steps", 4}});
    ASSERT_EQ(r.status, 200) << r.body;
    trainingId = r.json()["training_id"].get<std::int64_t>();
    const auto owner = adaId();
    auto& bucketBlobs = api->platform().blobs();
    EXPECT_EQ(namesStartingWith(bucketBlobs, owner, "training-").size(), 1u);
    EXPECT_TRUE(storage::JobRepository(api->platform().db()).find(trainingId)->home.empty());  // anyone's
    EXPECT_EQ(status(trainingId).value("messege", ""), "deploying_gpu");
    // The orphan sweep keeps a waiting training's images.
    otherWorker->platform().runner().sweepOrphans(0);
    EXPECT_EQ(namesStartingWith(bucketBlobs, owner, "training-").size(), 1u);

    const auto cancelled = post("/api/v3/cancel_training/" + std::to_string(trainingId), {{"key", key}});
    EXPECT_EQ(cancelled.status, 200) << cancelled.body;
    EXPECT_EQ(status(trainingId).value("messege", ""), "cancelled");
    EXPECT_TRUE(namesStartingWith(bucketBlobs, owner, "training-").empty());
}

}  // namespace
}  // namespace easel::testing
