// Models across servers: what a worker advertises in the workers table, and what an API-only server
// (ModelCatalog) lists from it: the union of live workers' models, the default of the most recently
// seen one, nothing from a worker that stopped advertising, and model loading refused with 503.

#include "jobs/model_catalog.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/service_error.h"
#include "fake_clock.h"
#include "fake_generator.h"
#include "storage/worker_repository.h"
#include "temp_dir.h"
#include "test_database.h"

namespace easel::jobs {
namespace {

std::vector<std::string> ids(const std::vector<ModelDescription>& models) {
    std::vector<std::string> out;
    for (const auto& m : models) out.push_back(m.id);
    return out;
}

TEST(ModelCatalog, ListsTheModelsOfLiveWorkersAndForgetsSilentOnes) {
    testing::TestDatabase database;
    FakeClock clock;
    storage::WorkerRepository workers(database.db());
    testing::FakeGenerator first;
    testing::FakeGenerator second;
    testing::TempDir dir;
    dir.write("shapes-xl.safetensors", "weights");
    second.addModel("shapes-xl", dir / "shapes-xl.safetensors");
    dir.write("pixel.safetensors", "weights");
    second.addAdapter("pixel-lora", dir / "pixel.safetensors", "lora", 0);

    const auto advertised = nlohmann::json::parse(advertisedModels(second));
    EXPECT_EQ(advertised["default"], "fake-model");
    ASSERT_EQ(advertised["models"].size(), 3u);
    EXPECT_EQ(advertised["models"][0]["default_width"], 64);
    EXPECT_EQ(advertised["models"][0]["family"], "sd1");

    ModelCatalog catalog(database.db(), clock, 30);
    EXPECT_TRUE(catalog.models().empty());  // no worker yet: the API server has nothing to offer
    EXPECT_FALSE(catalog.defaultModel());
    EXPECT_EQ(catalog.liveWorkers(), 0);

    workers.advertise("host-a:1:x", clock.nowSeconds(), advertisedModels(first));
    clock.advance(5);
    workers.advertise("host-b:2:y", clock.nowSeconds(), advertisedModels(second));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the catalog's one-second cache
    EXPECT_EQ(ids(catalog.models()), (std::vector<std::string>{"fake-model", "shapes-xl", "pixel-lora"}));
    const auto models = catalog.models();
    EXPECT_EQ(models[2].category, "lora");
    EXPECT_EQ(models[0].defaultSteps, 4);
    EXPECT_EQ(catalog.defaultModel()->id, "fake-model");
    EXPECT_EQ(catalog.liveWorkers(), 2);

    // host-b dies (no more heartbeats); host-a keeps advertising.
    clock.advance(40);
    workers.advertise("host-a:1:x", clock.nowSeconds(), advertisedModels(first));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    EXPECT_EQ(ids(catalog.models()), std::vector<std::string>{"fake-model"});
    EXPECT_EQ(catalog.liveWorkers(), 1);

    workers.retire("host-a:1:x");  // a clean stop
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    EXPECT_TRUE(catalog.models().empty());
}

TEST(ModelCatalog, AnApiServerRefusesToLoadModelsWith503) {
    testing::TestDatabase database;
    FakeClock clock;
    ModelCatalog catalog(database.db(), clock, 30);
    try {
        catalog.addModel("m", "/models/m");
        FAIL() << "an API-only server loaded a model";
    } catch (const ServiceError& e) {
        EXPECT_EQ(e.code(), ErrorCode::Unavailable);
        EXPECT_NE(std::string(e.what()).find("--role api"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(catalog.removeModel("m"));  // it has none; the workers remove theirs
    EXPECT_THROW(catalog.addAdapter("l", "/l.safetensors", "lora", 0), ServiceError);
}

}  // namespace
}  // namespace easel::jobs
