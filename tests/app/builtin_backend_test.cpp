// The whole server path with the real built-in model: HTTP -> queue -> worker -> Engine -> PNG link.

#include <gtest/gtest.h>

#include "app/backend.h"
#include "builtin_model_dir.h"
#include "common/base64.h"
#include "engine_server.h"
#include "eventually.h"
#include "http_client.h"
#include "inference/engine.h"
#include "inference/loading/safetensors.h"
#include "models/model_registry.h"
#include "server/http_server.h"
#include "shape_detector.h"
#include "temp_dir.h"

namespace easel::testing {
namespace {

// Loaded before the registry, backend and router that describe it are made.
struct LoadedEngine : inference::Engine {
    LoadedEngine() { loadModel(builtinModelDir()); }
};
// The server as easel-server runs it, with the built-in model.
using BuiltinServer = EngineServer<LoadedEngine>;

TEST(BuiltinModelServer, Text2ImgOverHttpMatchesTheEngineAndCarriesItsParameters) {
    ASSERT_TRUE(std::filesystem::exists(builtinModelDir() / "model.json"))
        << "no built-in model at " << builtinModelDir() << " (it is committed: restore it with git)";
    BuiltinServer server;
    auto& http = server.http;
    auto& engine = server.engine;

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

// A kohya-format LoRA for the built-in model: rank 4 on the mid block's cross-attention key and its
// proj_in (a 1x1 conv), with a scalar alpha, as sd-scripts writes them. Deterministic values.
void writeBuiltinLora(const std::filesystem::path& path, std::uint32_t seed = 99) {
    std::vector<std::vector<float>> storage;
    std::vector<inference::TensorToWrite> tensors;
    std::uint32_t x = seed;
    auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float scale) {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        std::vector<float> v(static_cast<std::size_t>(n));
        for (auto& f : v) {
            x = x * 1664525u + 1013904223u;
            f = scale * (static_cast<float>(x >> 8) / 16777216.0f - 0.5f);
        }
        storage.push_back(std::move(v));
        const auto& data = storage.back();
        tensors.push_back({name, inference::DType::F32, std::move(shape),
                           std::as_bytes(std::span<const float>(data.data(), data.size()))});
    };
    storage.reserve(8);
    const std::string attn = "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k";
    add(attn + ".lora_down.weight", {4, 128}, 2.0f);
    add(attn + ".lora_up.weight", {64, 4}, 2.0f);
    add(attn + ".alpha", {}, 0.0f);
    const std::string proj = "lora_unet_mid_block_attentions_0_proj_in";
    add(proj + ".lora_down.weight", {4, 64, 1, 1}, 1.0f);
    add(proj + ".lora_up.weight", {64, 4, 1, 1}, 1.0f);
    add(proj + ".alpha", {}, 0.0f);
    storage[2][0] = 4.0f;  // alpha = rank: scale 1
    storage[5][0] = 4.0f;
    inference::writeSafetensors(path, tensors, {{"ss_network_module", "networks.lora"}});
}

TEST(BuiltinModelServer, ALoraChangesThePictureAndTheNextRequestWithoutItIsTheBaseAgain) {
    BuiltinServer server;
    auto& http = server.http;
    auto& backend = server.backend;
    const auto& dir = server.dir;
    const std::string admin =
        backend.accounts().createUser("root@example.com", "correct horse", "premium", true).apiKey;
    const auto generate = [&](const nlohmann::json& extra) {
        nlohmann::json body{{"key", admin},   {"prompt", "a large red square at the top left on a white background"},
                            {"width", 64},    {"height", 64},
                            {"seed", 77},     {"num_inference_steps", 12},
                            {"base64", "yes"}};
        if (extra.is_object()) body.update(extra);  // {} is null to nlohmann
        const auto r = postJson(http.port(), "/api/v6/images/text2img", body);
        EXPECT_EQ(r.status, 200) << r.body;
        return r;
    };
    const auto pixels = [](const HttpResult& r) {
        const std::string data = r.json()["output"][0];
        const auto bytes = decodeBase64(data.substr(data.find(',') + 1));
        return inference::decodeImage(std::vector<std::uint8_t>(bytes->begin(), bytes->end()));
    };
    const auto before = pixels(generate({}));

    const auto file = dir.path() / "boxy.safetensors";
    writeBuiltinLora(file);
    const auto load =
        postJson(http.port(), "/api/v1/enterprise/load_model",
                 {{"key", admin}, {"model_id", "boxy"}, {"path", file.string()}, {"model_category", "lora"}});
    ASSERT_EQ(load.status, 200) << load.body;
    ASSERT_TRUE(eventually([&] {
        return postJson(http.port(), "/api/v1/enterprise/verify_model", {{"key", admin}, {"model_id", "boxy"}})
                   .json()["model_status"] == "ready";
    }));

    const auto withLora = generate({{"lora_model", "boxy"}, {"lora_strength", 0.9}});
    const auto changed = pixels(withLora);
    ASSERT_EQ(changed.rgb.size(), before.rgb.size());
    double diff = 0;
    for (std::size_t i = 0; i < before.rgb.size(); ++i) diff += std::abs(int(before.rgb[i]) - int(changed.rgb[i]));
    diff /= static_cast<double>(before.rgb.size());
    EXPECT_GT(diff, 2.0) << "the LoRA left the picture almost as it was";
    // The PNG says what made it, as A1111 writes it.
    const std::string infotext = withLora.json()["meta"]["infotexts"][0];
    EXPECT_NE(infotext.find("<lora:boxy:0.9>"), std::string::npos) << infotext;
    EXPECT_NE(infotext.find("Lora hashes: \"boxy: "), std::string::npos) << infotext;
    // The same with the prompt tag spelling.
    EXPECT_EQ(
        pixels(generate({{"prompt", "a large red square at the top left on a white background <lora:boxy:0.9>"}})).rgb,
        changed.rgb);

    // Without it: the base model's exact picture again.
    EXPECT_EQ(pixels(generate({})).rgb, before.rgb);
    // An unknown LoRA is a 400 and costs nothing.
    const auto unknown = postJson(http.port(), "/api/v6/images/text2img",
                                  {{"key", admin}, {"prompt", "a red square"}, {"lora_model", "nope"}});
    EXPECT_EQ(unknown.status, 400) << unknown.body;
}

TEST(BuiltinModelEngine, ALoraFileReplacedOnDiskIsReadAgainWithItsNewHash) {
    TempDir dir;
    inference::Engine engine;
    engine.loadModel(builtinModelDir());
    const auto file = dir.path() / "boxy.safetensors";
    writeBuiltinLora(file, 99);
    inference::GenerationRequest r;
    r.prompt = "a large red square at the top left on a white background";
    r.width = r.height = 64;
    r.steps = 8;
    r.seed = 5;
    r.loras = {{"boxy", file, 0.9, 0.9}};
    const auto hashIn = [](const std::string& infotext) {
        const auto at = infotext.find("Lora hashes: \"boxy: ");
        return at == std::string::npos ? std::string() : infotext.substr(at + 20, 12);
    };
    const auto first = engine.generate(r);
    const auto firstHash = hashIn(first.infotexts[0]);
    ASSERT_EQ(firstHash.size(), 12u) << first.infotexts[0];
    EXPECT_EQ(engine.generate(r).images[0].rgb, first.images[0].rgb);  // the same file: the same picture

    writeBuiltinLora(file, 12345);  // other weights under the same name
    std::filesystem::last_write_time(file, std::filesystem::last_write_time(file) + std::chrono::seconds(2));
    const auto second = engine.generate(r);
    EXPECT_NE(second.images[0].rgb, first.images[0].rgb);
    const auto secondHash = hashIn(second.infotexts[0]);
    EXPECT_EQ(secondHash.size(), 12u);
    EXPECT_NE(secondHash, firstHash);
}

}  // namespace
}  // namespace easel::testing
