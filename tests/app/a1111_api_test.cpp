// The AUTOMATIC1111 web UI API (/sdapi/v1/*) through real HTTP: A1111's field names and answers, on the
// same queue, quota and rate limits as the native API.

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "backend_fixture.h"
#include "common/base64.h"
#include "common/infotext.h"
#include "eventually.h"
#include "http_client.h"
#include "server/a1111_controller.h"

namespace easel::testing {
namespace {

using nlohmann::json;

std::string pngBase64(int w, int h, std::uint8_t value) {
    inference::Image img;
    img.width = w;
    img.height = h;
    img.rgb.assign(static_cast<std::size_t>(w * h * 3), value);
    return encodeBase64(inference::encodePng(img));
}

inference::Image decodedImage(const json& base64) {
    const auto bytes = decodeBase64(base64.get<std::string>());
    EXPECT_TRUE(bytes.has_value());
    return inference::decodeImage(bytes.value_or(jobs::Bytes{}));
}

class A1111Api : public BackendTest {
protected:
    void SetUp() override {
        BackendTest::SetUp();
        key = signup("a@example.com")["api_key"];
        backend->accounts().setPlan("a@example.com", "premium");  // room for many requests
        userId = backend->accounts().authenticateKey(key).userId;
    }
    std::map<std::string, std::string> bearer() const { return {{"Authorization", "Bearer " + key}}; }
    HttpResult sd(const std::string& method, const std::string& path, const json& body = json::object()) {
        return httpRequest(port, method, "/sdapi/v1/" + path, method == "GET" ? std::string() : body.dump(), bearer());
    }
    std::int64_t imagesUsed() { return backend->accounts().account(userId).imagesUsed; }

    std::string key;
    std::int64_t userId = 0;
};

TEST_F(A1111Api, Txt2ImgAnswersWithPngsOfTheRequestedSizeAndCount) {
    const auto r = sd("POST", "txt2img",
                      {{"prompt", "a red circle"},
                       {"negative_prompt", "blur"},
                       {"seed", 42},
                       {"steps", 3},
                       {"cfg_scale", 6.5},
                       {"width", 64},
                       {"height", 128},
                       {"batch_size", 2},
                       {"n_iter", 2},
                       {"sampler_name", "Euler a"},
                       {"scheduler", "Karras"},
                       {"restore_faces", false},
                       {"alwayson_scripts", json::object()},
                       {"enable_hr", false}});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = r.json();
    ASSERT_EQ(j["images"].size(), 4u);
    for (const auto& image : j["images"]) {
        const auto decoded = decodedImage(image);
        EXPECT_EQ(decoded.width, 64);
        EXPECT_EQ(decoded.height, 128);
    }
    EXPECT_EQ(decodedImage(j["images"][1]).rgb[5], 43);  // the fake draws seed + sample
    EXPECT_EQ(j["parameters"]["prompt"], "a red circle");
    ASSERT_TRUE(j["info"].is_string());
    const auto info = json::parse(j["info"].get<std::string>());
    EXPECT_EQ(info["seed"], 42);
    EXPECT_EQ(info["all_seeds"], json({42, 43, 44, 45}));
    EXPECT_EQ(info["sampler_name"], "Euler a");
    EXPECT_EQ(info["scheduler"], "Karras");
    EXPECT_EQ(info["steps"], 3);
    EXPECT_EQ(info["cfg_scale"], 6.5);
    EXPECT_EQ(info["width"], 64);
    ASSERT_EQ(info["infotexts"].size(), 4u);
    EXPECT_EQ(info["infotexts"][0], "a red circle\nSeed: 42");
    const auto used = generator.lastParams();
    EXPECT_EQ(used.scheduler, "Euler a");
    EXPECT_TRUE(used.karras);
    EXPECT_EQ(used.negativePrompt, "blur");
    EXPECT_EQ(used.samples, 4);
}

TEST_F(A1111Api, ChargesTheQuotaExactlyAsTheNativeAPI) {
    ASSERT_EQ(sd("POST", "txt2img", {{"prompt", "a"}, {"batch_size", 3}}).status, 200);
    EXPECT_EQ(imagesUsed(), 3);
    ASSERT_EQ(text2img(key, {{"samples", 3}}).status, 200);
    EXPECT_EQ(imagesUsed(), 6);
    ASSERT_EQ(sd("POST", "txt2img", {{"prompt", "a"}, {"batch_size", 2}, {"n_iter", 2}}).status, 200);
    EXPECT_EQ(imagesUsed(), 10);
    // An empty prompt is a request like any other, as in A1111.
    ASSERT_EQ(sd("POST", "txt2img", {{"prompt", ""}}).status, 200);
    EXPECT_EQ(imagesUsed(), 11);
    // Refused requests cost nothing.
    EXPECT_EQ(sd("POST", "txt2img", {{"prompt", "a"}, {"batch_size", 5}}).status, 422);
    EXPECT_EQ(imagesUsed(), 11);
}

TEST_F(A1111Api, Img2ImgAndInpaintTakeBase64InitImagesAndMasks) {
    const auto init = pngBase64(64, 64, 200);
    auto r = sd("POST", "img2img",
                {{"prompt", "a blue star"},
                 {"init_images", {"data:image/png;base64," + init}},
                 {"denoising_strength", 0.5},
                 {"width", 64},
                 {"height", 64},
                 {"resize_mode", 0}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = r.json();
    ASSERT_EQ(j["images"].size(), 1u);
    const auto out = decodedImage(j["images"][0]);
    EXPECT_EQ(out.width, 64);
    EXPECT_EQ(out.rgb[0], 1);  // the fake marks that an init image arrived
    EXPECT_EQ(generator.lastParams().kind, "img2img");
    EXPECT_DOUBLE_EQ(generator.lastParams().strength, 0.5);
    EXPECT_TRUE(j["parameters"]["init_images"].is_null());  // not echoed back, as A1111 does by default
    EXPECT_EQ(json::parse(j["info"].get<std::string>())["denoising_strength"], 0.5);

    r = sd("POST", "img2img",
           {{"prompt", "a patch"},
            {"init_images", {init}},
            {"mask", pngBase64(64, 64, 255)},
            {"inpainting_fill", 1},
            {"inpaint_full_res", true},
            {"mask_blur", 4},
            {"batch_size", 2},
            {"width", 64},
            {"height", 64}});
    ASSERT_EQ(r.status, 200) << r.body;
    j = r.json();
    ASSERT_EQ(j["images"].size(), 2u);
    EXPECT_EQ(decodedImage(j["images"][1]).height, 64);
    EXPECT_EQ(generator.lastParams().kind, "inpaint");
    EXPECT_TRUE(json::parse(j["info"].get<std::string>())["is_using_inpainting_conditioning"]);
    EXPECT_EQ(imagesUsed(), 3);

    // No init image, or one that is not base64: a 422 naming A1111's field.
    r = sd("POST", "img2img", {{"prompt", "x"}});
    EXPECT_EQ(r.status, 422);
    EXPECT_TRUE(r.json()["field_errors"].contains("init_images")) << r.body;
    r = sd("POST", "img2img", {{"prompt", "x"}, {"init_images", {init}}, {"mask", pngBase64(32, 32, 255)}});
    EXPECT_EQ(r.status, 422);
    EXPECT_TRUE(r.json()["field_errors"].contains("mask")) << r.body;
}

TEST_F(A1111Api, BadValuesAre422WithClearMessagesInA1111sShape) {
    auto r = sd("POST", "txt2img", {{"prompt", "a"}, {"sampler_name", "Nonsense 3000"}});
    ASSERT_EQ(r.status, 422) << r.body;
    auto j = r.json();
    EXPECT_EQ(j["error"], "ValidationError");
    for (const char* field : {"detail", "body", "errors"}) EXPECT_TRUE(j.contains(field)) << field;
    const std::string detail = j["detail"];
    EXPECT_NE(detail.find("'Nonsense 3000' is not a sampler"), std::string::npos) << detail;
    EXPECT_NE(detail.find("/sdapi/v1/samplers"), std::string::npos) << detail;

    r = sd("POST", "txt2img", {{"prompt", "a"}, {"sampler_name", "Euler"}, {"scheduler", "Exponential"}});
    EXPECT_EQ(r.status, 422);
    EXPECT_TRUE(r.json()["field_errors"].contains("scheduler"));
    r = sd("POST", "txt2img", {{"prompt", "a"}, {"batch_size", 3}, {"n_iter", 2}});
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(r.body.find("times n_iter must be from 1 to 4"), std::string::npos) << r.body;
    // The service's checks come back under A1111's names.
    r = sd("POST", "txt2img", {{"prompt", "a"}, {"cfg_scale", 99}, {"width", 100}});
    EXPECT_EQ(r.status, 422);
    EXPECT_TRUE(r.json()["field_errors"].contains("cfg_scale")) << r.body;
    EXPECT_TRUE(r.json()["field_errors"].contains("width")) << r.body;
    r = sd("POST", "txt2img", {{"prompt", "a"}, {"override_settings", {{"sd_model_checkpoint", "nope"}}}});
    EXPECT_EQ(r.status, 422);
    EXPECT_TRUE(r.json()["field_errors"].contains("override_settings.sd_model_checkpoint")) << r.body;
    EXPECT_EQ(generator.completed(), 0);
    EXPECT_EQ(imagesUsed(), 0);
}

TEST_F(A1111Api, BearerAndBasicBothWorkAndABadKeyIs401) {
    EXPECT_EQ(httpRequest(port, "GET", "/sdapi/v1/sd-models", {}, bearer()).status, 200);
    const auto basic = [](const std::string& pair) {
        return std::map<std::string, std::string>{
            {"Authorization", "Basic " + encodeBase64(jobs::Bytes(pair.begin(), pair.end()))}};
    };
    const auto models = httpRequest(port, "GET", "/sdapi/v1/sd-models", {}, basic("user:" + key));
    ASSERT_EQ(models.status, 200) << models.body;
    ASSERT_EQ(models.json().size(), 1u);
    EXPECT_EQ(models.json()[0]["title"], "fake-model");
    EXPECT_EQ(models.json()[0]["model_name"], "fake-model");
    // A generation with Basic, as webuiapi's set_auth sends it.
    const auto made = httpRequest(port, "POST", "/sdapi/v1/txt2img", json{{"prompt", "a"}}.dump(), basic("u:" + key));
    EXPECT_EQ(made.status, 200) << made.body;
    EXPECT_EQ(made.header("x-ratelimit-limit"), "300");  // the premium plan's generation bucket

    for (const auto& headers : {basic("user:wrong"), std::map<std::string, std::string>{{"Authorization", "Bearer no"}},
                                std::map<std::string, std::string>{}}) {
        const auto r = httpRequest(port, "GET", "/sdapi/v1/options", {}, headers);
        EXPECT_EQ(r.status, 401);
        EXPECT_EQ(r.json()["error"], "Unauthorized");
        EXPECT_EQ(r.header("www-authenticate").rfind("Basic", 0), 0u);
    }
    // The native API reads Basic too.
    EXPECT_EQ(get("/api/v1/models", basic("user:" + key)).status, 200);
}

TEST_F(BackendTest, A1111RequestsCountAgainstTheSameRateLimit) {
    const std::string key = signup("free@example.com")["api_key"];  // free plan: 10 generation requests a minute
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + key}};
    EXPECT_EQ(text2img(key).status, 200);
    for (int i = 0; i < 9; ++i) {  // refused as invalid, but counted
        httpRequest(port, "POST", "/sdapi/v1/txt2img", json{{"prompt", "a"}, {"width", 100}}.dump(), auth);
    }
    const auto r = httpRequest(port, "POST", "/sdapi/v1/txt2img", json{{"prompt", "a"}}.dump(), auth);
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.json()["error"], "TooManyRequests");
    EXPECT_FALSE(r.header("retry-after").empty());
    EXPECT_EQ(r.header("x-ratelimit-remaining"), "0");
    EXPECT_EQ(text2img(key).status, 429);  // one bucket for both dialects
    nextMinute();
    EXPECT_EQ(httpRequest(port, "POST", "/sdapi/v1/txt2img", json{{"prompt", "a"}}.dump(), auth).status, 200);
}

TEST_F(A1111Api, ProgressShowsTheRunningJobWithAPreview) {
    auto idle = sd("GET", "progress").json();
    EXPECT_EQ(idle["progress"], 0.0);
    EXPECT_EQ(idle["state"]["job_count"], 0);
    EXPECT_TRUE(idle["current_image"].is_null());

    generator.pauseAtStep(2);
    HttpResult result;
    std::thread client([&] { result = sd("POST", "txt2img", {{"prompt", "slow"}, {"steps", 4}}); });
    ASSERT_TRUE(generator.waitPaused());
    const auto p = sd("GET", "progress");
    generator.resume();
    client.join();
    ASSERT_EQ(p.status, 200) << p.body;
    const auto j = p.json();
    EXPECT_DOUBLE_EQ(j["progress"].get<double>(), 0.5);
    EXPECT_EQ(j["state"]["job_count"], 1);
    EXPECT_EQ(j["state"]["sampling_step"], 2);
    EXPECT_EQ(j["state"]["sampling_steps"], 4);
    EXPECT_EQ(j["state"]["job"], "txt2img");
    ASSERT_TRUE(j["current_image"].is_string()) << p.body;
    const auto preview = decodedImage(j["current_image"]);
    EXPECT_EQ(preview.width, 8);
    EXPECT_EQ(preview.rgb[0], 2);  // the fake's preview at step 2
    EXPECT_EQ(result.status, 200);
    EXPECT_EQ(result.json()["images"].size(), 1u);
}

TEST_F(A1111Api, InterruptCancelsTheRunningJobAndRefundsIt) {
    generator.pauseAtStep(1);
    HttpResult result;
    std::thread client([&] { result = sd("POST", "txt2img", {{"prompt", "stop me"}, {"batch_size", 2}}); });
    ASSERT_TRUE(generator.waitPaused());
    EXPECT_EQ(imagesUsed(), 2);
    const auto r = sd("POST", "interrupt");
    EXPECT_EQ(r.status, 200) << r.body;
    generator.resume();
    client.join();
    ASSERT_EQ(result.status, 200) << result.body;
    EXPECT_TRUE(result.json()["images"].empty());
    EXPECT_TRUE(eventually([&] { return imagesUsed() == 0; }));
    EXPECT_EQ(generator.completed(), 0);
    // Nothing left to interrupt: still 200, as A1111 answers.
    EXPECT_EQ(sd("POST", "interrupt").status, 200);
}

TEST_F(A1111Api, PngInfoReadsBackTheParametersOfAnImageEaselMade) {
    const auto made = sd("POST", "txt2img", {{"prompt", "a green square"}, {"seed", 9}}).json();
    const auto info = json::parse(made["info"].get<std::string>());
    auto r = sd("POST", "png-info", {{"image", "data:image/png;base64," + made["images"][0].get<std::string>()}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["info"], info["infotexts"][0]);
    // The fake's text has no "Steps:" line, so all of it is the prompt (as A1111 reads it too).
    EXPECT_EQ(r.json()["parameters"]["Prompt"].get<std::string>().rfind("a green square", 0), 0u) << r.body;

    // A full A1111 infotext comes back parsed as A1111's parse_generation_parameters spells it.
    Infotext text;
    text.prompt = "a cat";
    text.negativePrompt = "dogs";
    text.fields = {{"Steps", "20"}, {"Sampler", "DPM++ 2M"}, {"Schedule type", "Karras"}, {"Size", "512x768"}};
    inference::Image img{8, 8, std::vector<std::uint8_t>(8 * 8 * 3, 0)};
    const auto png = inference::encodePng(img, {{"parameters", text.format()}, {"Software", "easel"}});
    r = sd("POST", "png-info", {{"image", encodeBase64(png)}});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = r.json();
    EXPECT_EQ(j["info"], text.format());
    EXPECT_EQ(j["parameters"]["Prompt"], "a cat");
    EXPECT_EQ(j["parameters"]["Negative prompt"], "dogs");
    EXPECT_EQ(j["parameters"]["Steps"], "20");
    EXPECT_EQ(j["parameters"]["Sampler"], "DPM++ 2M");
    EXPECT_EQ(j["parameters"]["Size-1"], "512");
    EXPECT_EQ(j["parameters"]["Size-2"], "768");
    EXPECT_EQ(j["items"]["Software"], "easel");
    EXPECT_EQ(sd("POST", "png-info", {{"image", "not an image at all"}}).status, 422);
}

TEST_F(A1111Api, OptionsChooseThisAccountsModel) {
    EXPECT_EQ(sd("GET", "options").json()["sd_model_checkpoint"], "fake-model");
    const auto file = dir.path() / "other.safetensors";
    std::ofstream(file) << "x";
    generator.addModel("other", file);
    auto r = sd("POST", "options", {{"sd_model_checkpoint", "nope"}});
    EXPECT_EQ(r.status, 422);
    EXPECT_TRUE(r.json()["field_errors"].contains("sd_model_checkpoint"));
    EXPECT_EQ(sd("POST", "options", {{"sd_model_checkpoint", "other [0123abcd]"}, {"samples_save", false}}).status,
              200);
    EXPECT_EQ(sd("GET", "options").json()["sd_model_checkpoint"], "other");
    ASSERT_EQ(sd("POST", "txt2img", {{"prompt", "a"}}).status, 200);
    EXPECT_EQ(generator.lastParams().modelId, "other");
    // override_settings wins for one request; another account keeps the server's default.
    ASSERT_EQ(
        sd("POST", "txt2img", {{"prompt", "a"}, {"override_settings", {{"sd_model_checkpoint", "fake-model"}}}}).status,
        200);
    EXPECT_EQ(generator.lastParams().modelId, "fake-model");
    const std::string other = signup("b@example.com")["api_key"];
    EXPECT_EQ(httpRequest(port, "GET", "/sdapi/v1/options", {}, {{"Authorization", "Bearer " + other}})
                  .json()["sd_model_checkpoint"],
              "fake-model");
}

TEST_F(A1111Api, SamplersSchedulersAndTheCallersOwnLoras) {
    const auto samplers = sd("GET", "samplers").json();
    std::set<std::string> names;
    for (const auto& s : samplers) names.insert(s["name"].get<std::string>());
    EXPECT_TRUE(names.contains("Euler a"));
    EXPECT_TRUE(names.contains("DPM++ 2M"));
    EXPECT_FALSE(names.contains("DPM++ 2M Karras"));  // the schedule is a scheduler, as in A1111 1.9+
    const auto schedulers = sd("GET", "schedulers").json();
    ASSERT_EQ(schedulers.size(), 2u);
    EXPECT_EQ(schedulers[1]["label"], "Karras");

    const auto file = dir.path() / "mine.safetensors";
    std::ofstream(file) << "x";
    generator.addAdapter("mine", file, "lora", userId);
    const auto loras = sd("GET", "loras").json();
    ASSERT_EQ(loras.size(), 1u);
    EXPECT_EQ(loras[0]["name"], "mine");
    const std::string other = signup("b@example.com")["api_key"];
    EXPECT_TRUE(httpRequest(port, "GET", "/sdapi/v1/loras", {}, {{"Authorization", "Bearer " + other}}).json().empty());
}

TEST_F(A1111Api, WaitingRequestsAreBoundedAndPastThemIs503) {
    stop();
    httpOptions.workerThreads = 8;  // room for the four waits and the refused fifth
    start();
    generator.block();
    std::vector<std::thread> clients;
    std::vector<int> statuses(4, 0);
    for (int i = 0; i < 4; ++i) {
        clients.emplace_back([&, i] { statuses[i] = sd("POST", "txt2img", {{"prompt", "wait"}}).status; });
    }
    const auto caller = backend->accounts().authenticateKey(key);
    ASSERT_TRUE(eventually([&] { return backend->generation().historyTotal(caller, true) == 4; }));
    const auto refused = sd("POST", "txt2img", {{"prompt", "one too many"}});
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_FALSE(refused.header("retry-after").empty());
    EXPECT_EQ(refused.json()["error"], "ServiceUnavailable");
    EXPECT_EQ(imagesUsed(), 4);  // the refused one was not queued or charged
    // The native API and the reads still answer meanwhile.
    EXPECT_EQ(sd("GET", "progress").json()["state"]["job_count"], 4);
    generator.release();
    for (auto& c : clients) c.join();
    EXPECT_EQ(statuses, std::vector<int>(4, 200));
}

TEST_F(A1111Api, AJobNotDoneWithinTheTimeLimitIsCancelledAndNotCharged) {
    server::Router router;
    server::registerA1111Routes(router, backend->platform().access(), backend->generation(), {std::chrono::seconds(1)});
    server::HttpServerOptions options;
    options.port = 0;
    server::HttpServer impatient(options, std::move(router));
    impatient.start();
    generator.block();
    const auto r = httpRequest(impatient.port(), "POST", "/sdapi/v1/txt2img",
                               json{{"prompt", "a"}, {"batch_size", 2}}.dump(), bearer());
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.json()["error"], "ServiceUnavailable");
    EXPECT_NE(r.body.find("not ready within 1 s"), std::string::npos) << r.body;
    EXPECT_FALSE(r.header("retry-after").empty());
    generator.release();
    EXPECT_TRUE(eventually([&] { return imagesUsed() == 0; }));
    EXPECT_EQ(generator.completed(), 0);
    impatient.stop();
}

// tests/clients/a1111_client_test.py, the Python client written against A1111's documented schema, against
// this backend (the fake generator; the a1111_python_client ctest runs it against easel-server and the
// built-in model).
TEST_F(A1111Api, ThePythonClientPassesAgainstTheBackend) {
    if (std::system("python3 -c 'import requests' >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "python3 with requests (Debian: python3-requests) is not installed";
    }
    stop();
    httpOptions.workerThreads = 4;
    start();
    // Every job waits at its start until the one before has left its pause; then it is let go to step 2,
    // where it stays a second.
    std::atomic<bool> done{false};
    generator.block();
    std::thread slowDown([&] {
        std::size_t seen = 0;
        while (!done) {
            if (!generator.waitStarted(seen + 1, std::chrono::milliseconds(50))) continue;
            ++seen;
            generator.pauseAtStep(2);
            generator.release();
            if (generator.waitPaused(std::chrono::seconds(5))) {
                for (int i = 0; i < 20 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            generator.block();
            generator.resume();
        }
        generator.release();
        generator.resume();
    });
    const auto script = std::filesystem::path(EASEL_SOURCE_DIR) / "tests" / "clients" / "a1111_client_test.py";
    const auto command =
        "python3 '" + script.string() + "' http://127.0.0.1:" + std::to_string(port) + " '" + key + "'";
    const int status = std::system(command.c_str());
    done = true;
    slowDown.join();
    EXPECT_EQ(status, 0) << command;
}

}  // namespace
}  // namespace easel::testing
