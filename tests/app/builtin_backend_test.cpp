// The whole server path with the real built-in model: HTTP -> queue -> worker -> Engine -> PNG link.

#include <gtest/gtest.h>

#include "app/backend.h"
#include "builtin_model_dir.h"
#include "http_client.h"
#include "inference/engine.h"
#include "models/model_registry.h"
#include "server/http_server.h"
#include "shape_detector.h"
#include "temp_dir.h"

namespace easel::testing {
namespace {

TEST(BuiltinModelServer, Text2ImgOverHttpMatchesTheEngineAndCarriesItsParameters) {
    ASSERT_TRUE(std::filesystem::exists(builtinModelDir() / "model.json"))
        << "no built-in model at " << builtinModelDir() << " (it is committed: restore it with git)";
    TempDir dir;
    inference::Engine engine;
    engine.loadModel(builtinModelDir());
    models::ModelRegistry generator(engine);
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
