// The whole server path with the real built-in model: HTTP -> queue -> worker -> Engine -> PNG link.

#include <gtest/gtest.h>

#include "backend.h"
#include "builtin_model_dir.h"
#include "engine_generator.h"
#include "http_client.h"
#include "http_server.h"
#include "inference/engine.h"
#include "reference_dir.h"
#include "shape_detector.h"
#include "temp_dir.h"

namespace easel::testing {
namespace {

TEST(BuiltinModelServer, Text2ImgOverHttpMatchesTheEngineAndCarriesItsParameters) {
    if (!std::filesystem::exists(builtinModelDir() / "model.json")) {
        GTEST_SKIP() << "no built-in model at " << builtinModelDir();
    }
    TempDir dir;
    inference::Engine engine;
    engine.loadModel(builtinModelDir());
    app::EngineGenerator generator(engine);
    app::BackendConfig config;
    config.dataDir = dir.path() / "data";
    config.passwordCost = accounts::PasswordCost::fastForTests();
    app::Backend backend(config, generator);
    backend.start();
    server::HttpServerOptions o;
    o.port = 0;
    server::HttpServer http(o, backend.makeRouter("test", "cpu"));
    http.start();

    const auto signup =
        postJson(http.port(), "/api/v1/auth/signup", {{"email", "a@example.com"}, {"password", "correct horse"}});
    const std::string key = signup.json()["api_key"];
    const std::string prompt = "a large red square at the top left on a white background";
    // The shape the hosted API's clients send: strings for numbers, "no" for booleans.
    const auto r = postJson(http.port(), "/api/v3/text2img",
                            {{"key", key},
                             {"prompt", prompt},
                             {"negative_prompt", ""},
                             {"width", "64"},
                             {"height", "64"},
                             {"samples", "1"},
                             {"num_inference_steps", "20"},
                             {"guidance_scale", 5},
                             {"seed", 1234},
                             {"scheduler", "DPMSolverMultistepScheduler"},
                             {"safety_checker", "no"}});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = r.json();
    ASSERT_EQ(j["status"], "success") << r.body;
    EXPECT_EQ(j["meta"]["seed"], 1234);
    const std::string url = j["output"][0];
    const auto png = httpRequest(http.port(), "GET", url.substr(url.find("/images/")));
    ASSERT_EQ(png.status, 200);
    const std::vector<std::uint8_t> bytes(png.body.begin(), png.body.end());
    const auto text = inference::readPngText(bytes);
    ASSERT_TRUE(text.contains("parameters"));
    EXPECT_NE(text.at("parameters").find(prompt), std::string::npos);
    EXPECT_NE(text.at("parameters").find("Seed: 1234"), std::string::npos);

    // Byte for byte what the engine draws for the same request.
    inference::GenerationRequest direct;
    direct.prompt = prompt;
    direct.width = direct.height = 64;
    direct.steps = 20;
    direct.guidanceScale = 5;
    direct.seed = 1234;
    direct.scheduler = "DPMSolverMultistepScheduler";
    const auto expected = engine.generate(direct).images[0];
    const auto got = inference::decodeImage(bytes);
    EXPECT_EQ(got.rgb, expected.rgb);
    EXPECT_FALSE(detectShapes(got).shapes.empty());  // it drew something, not a blank page
}

}  // namespace
}  // namespace easel::testing

namespace easel::testing {
namespace {

// Added models are loaded on demand and evicted least-recently-used beyond the memory budget.
TEST(EngineGeneratorModels, AddedModelsStayWithinTheMemoryBudget) {
    const auto checkpoint = referenceDir() / "tiny_sd_checkpoint.safetensors";
    if (!std::filesystem::exists(checkpoint)) GTEST_SKIP() << "no reference data at " << referenceDir();
    const auto size = std::filesystem::file_size(checkpoint);
    inference::Engine none;
    inference::EngineOptions options;
    options.clipVocabulary = referenceDir() / "bpe_simple_vocab_16e6.txt.gz";
    app::EngineGenerator generator(none, options, size + size / 2);  // room for one of them
    const auto a = generator.addModel("tiny-a", checkpoint);
    EXPECT_EQ(a.id, "tiny-a");
    EXPECT_EQ(generator.loadedCount(), 1u);
    generator.addModel("tiny-b", checkpoint);
    EXPECT_EQ(generator.loadedCount(), 1u);  // tiny-a was evicted to make room
    const auto models = generator.models();
    ASSERT_EQ(models.size(), 2u);  // both still listed; tiny-a loads again when asked for
    EXPECT_EQ(models[0].id, "tiny-a");
    EXPECT_EQ(models[1].id, "tiny-b");
    EXPECT_TRUE(generator.removeModel("tiny-a"));
    EXPECT_FALSE(generator.removeModel("tiny-a"));
    EXPECT_EQ(generator.models().size(), 1u);
    EXPECT_THROW(generator.addModel("broken", referenceDir() / "README.md"), std::exception);
    EXPECT_EQ(generator.models().size(), 1u);
    EXPECT_FALSE(generator.defaultModel().has_value());
}

}  // namespace
}  // namespace easel::testing
