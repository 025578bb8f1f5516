// The model registry: models added by an admin are loaded on demand and evicted least-recently-used
// beyond the memory budget, and a load (seconds to minutes for a real checkpoint) never blocks the
// table that every submit reads.

#include "models/model_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/service_error.h"
#include "inference/engine.h"
#include "reference_dir.h"
#include "temp_dir.h"

namespace easel::testing {
namespace {

using namespace std::chrono_literals;

TEST(ModelRegistry, AddedModelsStayWithinTheMemoryBudget) {
    const auto checkpoint = referenceFile("tiny_sd_checkpoint.safetensors");
    const auto size = std::filesystem::file_size(checkpoint);
    inference::Engine none;
    inference::EngineOptions options;
    options.clipVocabulary = referenceFile("bpe_simple_vocab_16e6.txt.gz");
    models::ModelRegistry registry(none, options, size + size / 2);  // room for one of them
    const auto a = registry.addModel("tiny-a", checkpoint);
    EXPECT_EQ(a.id, "tiny-a");
    EXPECT_EQ(registry.loadedCount(), 1u);
    registry.addModel("tiny-b", checkpoint);
    EXPECT_EQ(registry.loadedCount(), 1u);  // tiny-a was evicted to make room
    const auto listed = registry.models();
    ASSERT_EQ(listed.size(), 2u);  // both still listed; tiny-a loads again when asked for
    EXPECT_EQ(listed[0].id, "tiny-a");
    EXPECT_EQ(listed[1].id, "tiny-b");
    EXPECT_TRUE(registry.removeModel("tiny-a"));
    EXPECT_FALSE(registry.removeModel("tiny-a"));
    EXPECT_EQ(registry.models().size(), 1u);
    EXPECT_THROW(registry.addModel("broken", referenceFile("README.md")), std::exception);
    EXPECT_EQ(registry.models().size(), 1u);
    EXPECT_FALSE(registry.defaultModel().has_value());
}

TEST(ModelRegistry, TheTableAnswersWhileAModelLoads) {
    const auto checkpoint = referenceFile("tiny_sd_checkpoint.safetensors");
    const auto size = std::filesystem::file_size(checkpoint);
    inference::Engine none;
    inference::EngineOptions options;
    options.clipVocabulary = referenceFile("bpe_simple_vocab_16e6.txt.gz");

    // The third load (tiny-a coming back after its eviction) stops half-way until the test lets it go.
    std::atomic<int> loads{0};
    std::promise<void> loading;
    std::promise<void> release;
    auto released = release.get_future().share();
    models::EngineLoader loader = [&](const std::filesystem::path& path, const inference::EngineOptions& o) {
        auto engine = std::make_shared<inference::Engine>(o);
        engine->loadModel(path);
        if (++loads == 3) {
            loading.set_value();
            released.wait();
        }
        return engine;
    };
    models::ModelRegistry registry(none, options, size + size / 2, loader);
    registry.addModel("tiny-a", checkpoint);
    registry.addModel("tiny-b", checkpoint);  // evicts tiny-a
    ASSERT_EQ(loads.load(), 2);

    std::thread job([&] {
        jobs::GenerationParams p;
        p.modelId = "tiny-a";
        p.prompt = "x";
        p.width = p.height = 64;
        p.steps = 1;
        try {
            registry.generate(p, nullptr, nullptr, {});
        } catch (const std::exception&) {
            // The tiny reference model's vocabulary is not CLIP's; only the load matters here.
        }
    });
    ASSERT_EQ(loading.get_future().wait_for(60s), std::future_status::ready);

    // What a submit does meanwhile: list the models and check a scheduler name.
    auto listed = std::async(std::launch::async, [&] { return registry.models().size(); });
    auto counted = std::async(std::launch::async, [&] { return registry.loadedCount(); });
    const bool answered =
        listed.wait_for(5s) == std::future_status::ready && counted.wait_for(5s) == std::future_status::ready;
    release.set_value();
    job.join();
    ASSERT_TRUE(answered) << "the model table was locked during a load";
    EXPECT_EQ(listed.get(), 2u);
    EXPECT_EQ(counted.get(), 0u);  // tiny-b was unloaded before tiny-a's load began, to stay in budget
    EXPECT_EQ(registry.loadedCount(), 1u);
    EXPECT_EQ(loads.load(), 3);
    EXPECT_FALSE(registry.checkScheduler("Euler a").has_value());
}

}  // namespace
}  // namespace easel::testing

namespace easel::testing {
namespace {

// An adapter folder as the installer leaves it: the file under the id's name and the marker that says
// what it is.
void installAdapter(const std::filesystem::path& modelsDir, const std::string& id, const std::string& category,
                    const std::filesystem::path& file) {
    const auto dir = modelsDir / id;
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(file, dir / (id + ".safetensors"));
    std::ofstream(dir / "easel-model.json")
        << nlohmann::json{{"model_category", category}, {"file", id + ".safetensors"}}.dump();
}

TEST(ModelRegistry, InstalledLorasAndEmbeddingsComeBackWithTheirCategoryAndFamily) {
    TempDir dir;
    const auto modelsDir = dir.path() / "models";
    installAdapter(modelsDir, "ink", "lora", referenceFile("adapters/lora_kohya.safetensors"));
    installAdapter(modelsDir, "tinyastro", "embeddings", referenceFile("adapters/tinyastro.safetensors"));
    installAdapter(modelsDir, "notalora", "lora", referenceFile("tiny_sd_checkpoint.safetensors"));
    inference::Engine none;
    models::ModelRegistry registry(none);
    registry.addInstalled(modelsDir);  // the broken one is skipped with a warning
    auto listed = registry.models();
    std::sort(listed.begin(), listed.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[0].id, "ink");
    EXPECT_EQ(listed[0].category, "lora");
    EXPECT_EQ(listed[0].family, "sd1");  // kohya's ss_base_model_version
    EXPECT_NE(listed[0].description.find("84 modules"), std::string::npos) << listed[0].description;
    EXPECT_EQ(listed[1].id, "tinyastro");
    EXPECT_EQ(listed[1].category, "embeddings");
    EXPECT_NE(listed[1].description.find("2 vectors of 32"), std::string::npos) << listed[1].description;
    EXPECT_EQ(registry.loadedCount(), 0u);  // adapters are files, not loaded models
    // A file that is not an adapter is a 400 naming the problem; nothing is added.
    try {
        registry.addAdapter("readme", referenceFile("README.md"), "lora", 0);
        FAIL() << "no error";
    } catch (const ServiceError& e) {
        EXPECT_EQ(e.code(), ErrorCode::BadRequest);
    }
    EXPECT_EQ(registry.models().size(), 2u);
    // Neither can be generated with.
    jobs::GenerationParams p;
    p.modelId = "ink";
    p.prompt = "x";
    EXPECT_THROW(registry.generate(p, nullptr, nullptr, {}), ServiceError);
}

TEST(ModelRegistry, AFineTunedModelIsItsOwnersAndComesBackAfterARestart) {
    const auto checkpoint = referenceFile("tiny_sd_checkpoint.safetensors");
    inference::Engine none;
    inference::EngineOptions options;
    options.clipVocabulary = referenceFile("bpe_simple_vocab_16e6.txt.gz");
    {
        models::ModelRegistry registry(none, options);
        EXPECT_EQ(registry.addModel("ft-direct", checkpoint, 5).ownerId, 5);
        EXPECT_EQ(registry.addModel("shared", checkpoint).ownerId, 0);
    }
    // What TrainingFiles::install leaves: the model in `file`, its owner in the marker.
    TempDir dir;
    const auto modelDir = dir.path() / "models" / "ft-abc";
    std::filesystem::create_directories(modelDir);
    std::filesystem::copy_file(checkpoint, modelDir / "model.safetensors");
    std::ofstream(modelDir / "easel-model.json") << nlohmann::json{
        {"model_category", "stable_diffusion"},
        {"file", "model.safetensors"},
        {"owner_id", 7}}.dump();
    models::ModelRegistry registry(none, options);
    registry.addInstalled(dir.path() / "models");
    const auto listed = registry.models();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].id, "ft-abc");
    EXPECT_EQ(listed[0].category, "stable_diffusion");
    EXPECT_EQ(listed[0].ownerId, 7);
    EXPECT_EQ(registry.loadedCount(), 0u);  // registered; loaded when a request asks for it
}

}  // namespace
}  // namespace easel::testing
