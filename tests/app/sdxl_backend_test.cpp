// SDXL over HTTP: an admin loads the tiny SDXL reference checkpoint through load_model, the model list
// says it is "sdxl" with SDXL's 1024x1024 default, a text2img of another size comes back at that size,
// and a LoRA made for SD 1.x is refused for it with a 400; an SDXL LoRA (kohya's SDXL names) loads and
// changes the image; the size/crop conditioning fields reach the model and the PNG's infotext.

#include <gtest/gtest.h>

#include "common/base64.h"
#include "engine_server.h"
#include "eventually.h"
#include "http_client.h"
#include "inference/image/image.h"
#include "inference/loading/safetensors.h"
#include "reference_sdxl_folder.h"
#include "tensor_files.h"

namespace easel::testing {
namespace {

// easel-server without a default model: the SDXL model comes in through load_model.
using EmptyServer = EngineServer<>;

// Loads a model (or LoRA) through load_model and waits until it is ready.
void loadAndWait(EmptyServer& server, const std::string& admin, const std::string& id,
                 const std::filesystem::path& path, const std::string& category = "") {
    nlohmann::json body{{"key", admin}, {"model_id", id}, {"path", path.string()}};
    if (!category.empty()) body["model_category"] = category;
    const auto load = postJson(server.http.port(), "/api/v1/enterprise/load_model", body);
    ASSERT_EQ(load.status, 200) << load.body;
    nlohmann::json status;
    eventually(
        [&] {
            status = postJson(server.http.port(), "/api/v1/enterprise/verify_model", {{"key", admin}, {"model_id", id}})
                         .json();
            return status["model_status"] == "ready" || status["model_status"] == "failed";
        },
        std::chrono::seconds(60), std::chrono::milliseconds(25));
    ASSERT_EQ(status["model_status"], "ready") << status.dump();
}

// The PNG of a base64 answer's first image.
std::vector<std::uint8_t> firstPng(const HttpResult& r) {
    const std::string data = r.json().at("output").at(0);
    const auto bytes = decodeBase64(data.substr(data.find(',') + 1));
    if (!bytes) throw std::runtime_error("output is not base64: " + data.substr(0, 80));
    return {bytes->begin(), bytes->end()};
}

TEST(SDXLServer, LoadsTheTinySDXLCheckpointAndGeneratesTheRequestedSize) {
    EmptyServer server;
    auto& http = server.http;
    const std::string admin =
        server.backend.accounts().createUser("root@example.com", "correct horse", "premium", true).apiKey;
    // No default size in the sidecar: the Engine's SDXL default applies.
    const auto folder = referenceSDXLFolder(server.dir, {{"default_steps", 2}, {"default_scheduler", "Euler"}});
    const auto waitReady = [&](const std::string& id) {
        nlohmann::json status;
        eventually(
            [&] {
                status =
                    postJson(http.port(), "/api/v1/enterprise/verify_model", {{"key", admin}, {"model_id", id}}).json();
                return status["model_status"] == "ready" || status["model_status"] == "failed";
            },
            std::chrono::seconds(60), std::chrono::milliseconds(25));
        return status;
    };
    auto load = postJson(http.port(), "/api/v1/enterprise/load_model",
                         {{"key", admin}, {"model_id", "tiny-sdxl"}, {"path", folder.string()}});
    ASSERT_EQ(load.status, 200) << load.body;
    const auto loaded = waitReady("tiny-sdxl");
    ASSERT_EQ(loaded["model_status"], "ready") << loaded.dump();

    const auto models = httpRequest(http.port(), "GET", "/api/v1/models", {}, {{"X-API-Key", admin}}).json()["models"];
    nlohmann::json sdxl;
    for (const auto& m : models) {
        if (m["model_id"] == "tiny-sdxl") sdxl = m;
    }
    ASSERT_TRUE(sdxl.is_object()) << models.dump();
    EXPECT_EQ(sdxl["family"], "sdxl");
    EXPECT_EQ(sdxl["default_width"], 1024);
    EXPECT_EQ(sdxl["default_height"], 1024);
    EXPECT_EQ(sdxl["default_steps"], 2);

    // A size other than the reference run's, still a multiple of the VAE's factor (the reference run's
    // size is one): twice as wide, as high.
    const auto [refWidth, refHeight] = referenceSDXLImageSize();
    const int width = 2 * refWidth;
    const int height = refHeight;
    const auto r = postJson(http.port(), "/api/v6/images/text2img",
                            {{"key", admin},
                             {"model_id", "tiny-sdxl"},
                             {"prompt", "a red circle"},
                             {"width", width},
                             {"height", height},
                             {"seed", 5},
                             {"num_inference_steps", 2},
                             {"base64", "yes"}});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(r.json()["status"], "success") << r.body;
    const std::string data = r.json()["output"][0];
    const auto bytes = decodeBase64(data.substr(data.find(',') + 1));
    ASSERT_TRUE(bytes.has_value());
    const auto image = inference::decodeImage(std::vector<std::uint8_t>(bytes->begin(), bytes->end()));
    EXPECT_EQ(image.width, width);
    EXPECT_EQ(image.height, height);

    // A LoRA for SD 1.x (kohya's ss_base_model_version says so) does not fit an SDXL model: 400.
    load = postJson(http.port(), "/api/v1/enterprise/load_model",
                    {{"key", admin},
                     {"model_id", "ink"},
                     {"path", referenceFile("adapters/lora_kohya.safetensors").string()},
                     {"model_category", "lora"}});
    ASSERT_EQ(load.status, 200) << load.body;
    ASSERT_EQ(waitReady("ink")["model_status"], "ready");
    const auto refused = postJson(http.port(), "/api/v6/images/text2img",
                                  {{"key", admin},
                                   {"model_id", "tiny-sdxl"},
                                   {"prompt", "a red circle"},
                                   {"width", width},
                                   {"height", height},
                                   {"lora_model", "ink"}});
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_NE(refused.body.find("sdxl"), std::string::npos) << refused.body;
}

TEST(SDXLServer, SDXLLoRAsAndTheSizeConditioningFieldsReachTheImage) {
    EmptyServer server;
    const std::string admin =
        server.backend.accounts().createUser("root@example.com", "correct horse", "premium", true).apiKey;
    loadAndWait(server, admin, "tiny-sdxl",
                referenceSDXLFolder(server.dir, {{"default_steps", 2}, {"default_scheduler", "Euler"}}));
    // A kohya SDXL LoRA: sgm UNet names and the second text encoder's "lora_te2_" names.
    const auto checkpoint = inference::SafetensorsFile::open(referenceSDXLCheckpoint());
    const auto shapeOf = [&](const std::string& key) { return checkpoint.at(key).shape; };
    const auto toV = shapeOf("model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_v.weight");
    const auto fc1 = shapeOf("conditioner.embedders.1.model.transformer.resblocks.0.mlp.c_fc.weight");
    torch::manual_seed(2);
    const auto lora = writeTensorFile(
        server.dir.path() / "xl_ink.safetensors",
        {{"lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_v.lora_down.weight", torch::randn({4, toV[1]})},
         {"lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_v.lora_up.weight", torch::randn({toV[0], 4})},
         {"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", torch::randn({4, fc1[1]})},
         {"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", torch::randn({fc1[0], 4})}});
    loadAndWait(server, admin, "xl-ink", lora, "lora");

    const auto [width, height] = referenceSDXLImageSize();
    const nlohmann::json base{{"key", admin},   {"model_id", "tiny-sdxl"}, {"prompt", "a red circle"},
                              {"width", width}, {"height", height},        {"seed", 5},
                              {"base64", "yes"}};
    nlohmann::json meta;  // the last reply's
    const auto generate = [&](const nlohmann::json& extra) {
        auto body = base;
        if (extra.is_object()) body.update(extra);
        auto r = postJson(server.http.port(), "/api/v6/images/text2img", body);
        EXPECT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.json()["status"], "success") << r.body;
        meta = r.json()["meta"];
        return firstPng(r);
    };
    const auto plainPng = generate({});
    const auto plain = inference::decodeImage(plainPng);
    EXPECT_EQ(inference::readPngText(plainPng).at("parameters").find("Original size"), std::string::npos);

    const auto withLoraPng = generate({{"lora_model", "xl-ink"}, {"lora_strength", "0.8"}});
    EXPECT_NE(inference::decodeImage(withLoraPng).rgb, plain.rgb);
    EXPECT_NE(inference::readPngText(withLoraPng).at("parameters").find("<lora:xl-ink:0.8>"), std::string::npos)
        << inference::readPngText(withLoraPng).at("parameters");
    EXPECT_EQ(inference::decodeImage(generate({})).rgb, plain.rgb);  // the LoRA is gone again

    // The size conditioning: another picture, said in the infotext; the defaults are the image's own size.
    const auto sizedPng = generate({{"original_width", 4 * width},
                                    {"original_height", 4 * height},
                                    {"crop_top", 16},
                                    {"target_height", 2 * height}});
    EXPECT_NE(inference::decodeImage(sizedPng).rgb, plain.rgb);
    const auto infotext = inference::readPngText(sizedPng).at("parameters");
    EXPECT_NE(infotext.find("Original size: " + std::to_string(4 * width) + "x" + std::to_string(4 * height)),
              std::string::npos)
        << infotext;
    EXPECT_NE(infotext.find("Crop top: 16"), std::string::npos) << infotext;
    // The reply's meta gives them back as sent ("use these settings" in the playground reads them).
    EXPECT_EQ(meta.value("original_width", 0), 4 * width) << meta.dump();
    EXPECT_EQ(meta.value("crop_top", 0), 16) << meta.dump();
    EXPECT_EQ(meta.value("target_height", 0), 2 * height) << meta.dump();
    EXPECT_FALSE(meta.contains("crop_left")) << meta.dump();
    EXPECT_EQ(infotext.find("Crop left"), std::string::npos) << infotext;
    EXPECT_NE(infotext.find("Target size: " + std::to_string(width) + "x" + std::to_string(2 * height)),
              std::string::npos)
        << infotext;
    // Naming the image's own size is the default, bit for bit.
    EXPECT_EQ(inference::decodeImage(generate({{"original_width", width}, {"target_height", height}})).rgb, plain.rgb);

    // Out of range: a 400 naming the field.
    auto bad = base;
    bad["crop_left"] = -1;
    bad["target_width"] = 40000;  // past 16 x the largest side
    const auto refused = postJson(server.http.port(), "/api/v6/images/text2img", bad);
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_NE(refused.body.find("crop_left"), std::string::npos) << refused.body;
    EXPECT_NE(refused.body.find("target_width"), std::string::npos) << refused.body;
}

}  // namespace
}  // namespace easel::testing
