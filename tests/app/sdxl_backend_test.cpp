// SDXL over HTTP: an admin loads the tiny SDXL reference checkpoint through load_model, the model list
// says it is "sdxl" with SDXL's 1024x1024 default, a text2img of another size comes back at that size,
// and a LoRA made for SD 1.x is refused for it with a 400.

#include <gtest/gtest.h>

#include "common/base64.h"
#include "engine_server.h"
#include "eventually.h"
#include "http_client.h"
#include "reference_sdxl_folder.h"

namespace easel::testing {
namespace {

// easel-server without a default model: the SDXL model comes in through load_model.
using EmptyServer = EngineServer<>;

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

}  // namespace
}  // namespace easel::testing
