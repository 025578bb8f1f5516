// The hosted-API-shaped generation endpoints, the queue and the workers, through real HTTP.

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "backend_fixture.h"
#include "common/base64.h"
#include "eventually.h"
#include "http_client.h"
#include "loopback_host.h"
#include "net/http_client.h"
#include "noise_png.h"
#include "storage/database.h"
#include "webhook_receiver.h"

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

class GenerationApi : public BackendTest {
protected:
    void SetUp() override {
        BackendTest::SetUp();
        key = signup("a@example.com")["api_key"];
        backend->accounts().setPlan("a@example.com", "premium");  // room for many requests
    }
    std::string key;
};

TEST_F(GenerationApi, Text2ImgSucceedsWithLinksAndMeta) {
    const auto r = text2img(key, {{"seed", 42}, {"samples", 2}, {"width", 64}, {"height", 128}});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = r.json();
    EXPECT_EQ(j["status"], "success");
    ASSERT_EQ(j["output"].size(), 2u);
    EXPECT_EQ(j["meta"]["seed"], 42);
    EXPECT_EQ(j["meta"]["W"], 64);
    EXPECT_GE(j["generationTime"].get<double>(), 0.0);
    const std::string url = j["output"][0];
    ASSERT_EQ(url.rfind("http://127.0.0.1:" + std::to_string(port) + "/images/", 0), 0u) << url;
    const auto png = get(url.substr(url.find("/images/")));
    ASSERT_EQ(png.status, 200);
    EXPECT_EQ(png.header("content-type"), "image/png");
    const auto image = inference::decodeImage(std::vector<std::uint8_t>(png.body.begin(), png.body.end()));
    EXPECT_EQ(image.width, 64);
    EXPECT_EQ(image.height, 128);
    EXPECT_EQ(image.rgb[5], 42);  // the fake draws the seed's value
    // Fetch returns the same shape.
    const auto f = post("/api/v6/images/fetch", {{"key", key}, {"request_id", j["id"]}});
    EXPECT_EQ(f.json()["output"], j["output"]);
    EXPECT_EQ(post("/api/v3/fetch/" + std::to_string(j["id"].get<int>()), {{"key", key}}).json()["status"], "success");
}

TEST_F(GenerationApi, LenientFieldsAsRealClientsSendThem) {
    const auto r = post("/api/v3/text2img", {{"key", key},
                                             {"prompt", "a blue star"},
                                             {"width", "64"},
                                             {"height", "64"},
                                             {"samples", "1"},
                                             {"num_inference_steps", "3"},
                                             {"guidance_scale", "7.5"},
                                             {"seed", nullptr},
                                             {"base64", "yes"},
                                             {"webhook", nullptr},
                                             {"track_id", nullptr},
                                             {"safety_checker", "no"},
                                             {"enhance_prompt", "no"}});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = r.json();
    EXPECT_EQ(j["status"], "success");
    const std::string out = j["output"][0];
    ASSERT_EQ(out.rfind("data:image/png;base64,", 0), 0u);
    EXPECT_TRUE(decodeBase64(out).has_value());
    EXPECT_EQ(j["meta"]["steps"], 3);
}

TEST_F(GenerationApi, MalformedAndDeeplyNestedBodiesAreRefusedBeforeAnyWork) {
    const auto bad = httpRequest(port, "POST", "/api/v6/images/text2img", "{\"key\": \"" + key + "\", \"prompt\": ");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("not valid JSON"), std::string::npos) << bad.body;
    // 64 levels are fine; 65, or a hundred thousand, get a 400 that says why.
    auto nested = [&](int depth) {
        return "{\"key\": \"" + key + "\", \"prompt\": \"a red circle\", \"extra\": " + std::string(depth - 1, '[') +
               std::string(depth - 1, ']') + "}";
    };
    EXPECT_EQ(httpRequest(port, "POST", "/api/v6/images/text2img", nested(64)).status, 200);
    for (const int depth : {65, 100'000}) {
        const auto deep = httpRequest(port, "POST", "/api/v6/images/text2img", nested(depth));
        EXPECT_EQ(deep.status, 400) << depth;
        EXPECT_NE(deep.body.find("nests deeper than 64"), std::string::npos) << deep.body.substr(0, 200);
    }
    // Brackets inside strings are text, not nesting.
    EXPECT_EQ(text2img(key, {{"prompt", std::string(1000, '[')}}).status, 200);
}

TEST_F(GenerationApi, BadValuesGetFieldErrors) {
    auto r = text2img(key, {{"width", 100}, {"samples", 9}, {"guidance_scale", "lots"}, {"prompt", ""}});
    ASSERT_EQ(r.status, 400);
    const auto errors = r.json()["errors"];
    EXPECT_TRUE(errors.contains("guidance_scale"));
    r = text2img(key, {{"width", 100}, {"samples", 9}});
    EXPECT_TRUE(r.json()["errors"].contains("width"));
    EXPECT_TRUE(r.json()["errors"].contains("samples"));
    EXPECT_EQ(text2img(key, {{"width", 2048}}).status, 400);
    EXPECT_EQ(text2img(key, {{"model_id", "no-such-model"}}).status, 400);
    EXPECT_EQ(generator.completed(), 0);
}

TEST_F(GenerationApi, Img2ImgAndInpaintTakeBase64Images) {
    const auto init = pngBase64(64, 64, 200);
    auto r = post(
        "/api/v6/images/img2img",
        {{"key", key}, {"prompt", "a square"}, {"init_image", "data:image/png;base64," + init}, {"strength", "0.5"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["meta"]["prompt"], "a square");
    // Missing, undecodable, or mismatched images: 400 before anything is charged.
    EXPECT_EQ(post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}}).status, 400);
    r = post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", "bm90IGFuIGltYWdl"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(r.json()["errors"].contains("init_image"));
    r = post("/api/v6/images/inpaint", {{"key", key}, {"prompt", "x"}, {"init_image", init}});
    EXPECT_TRUE(r.json()["errors"].contains("mask_image"));
    r = post("/api/v6/images/inpaint",
             {{"key", key}, {"prompt", "x"}, {"init_image", init}, {"mask_image", pngBase64(32, 32, 255)}});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.json()["message"].get<std::string>().find("size"), std::string::npos);
    r = post("/api/v6/images/inpaint",
             {{"key", key}, {"prompt", "x"}, {"init_image", init}, {"mask_image", pngBase64(64, 64, 255)}});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", "ftp://example.com/a.png"}})
                  .status,
              400);
}

TEST_F(GenerationApi, UnknownSchedulerIsRefusedBeforeCharging) {
    const auto r = text2img(key, {{"scheduler", "NoSuchSampler"}});
    ASSERT_EQ(r.status, 400);
    EXPECT_TRUE(r.json()["errors"].contains("scheduler"));
    EXPECT_EQ(text2img(key, {{"scheduler", "Euler a"}}).status, 200);
    const auto caller = backend->accounts().authenticateKey(key);
    EXPECT_EQ(backend->accounts().account(caller.userId).imagesUsed, 1);
}

TEST_F(GenerationApi, InitImageUrlsAreFetchedButNotFromPrivateAddresses) {
    LoopbackHost host;
    const auto png = decodeBase64(pngBase64(64, 64, 77)).value();
    host.router().add("GET", "/cat.png", [&](const server::Request&) { return pngResponse(png); });
    host.start();
    const auto url = host.url("/cat.png");
    auto r = post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", url}});
    ASSERT_EQ(r.status, 400);  // loopback: refused by default
    EXPECT_NE(r.json()["message"].get<std::string>().find("private"), std::string::npos);
    stop();
    config.allowPrivateDownloads = true;  // the admin's model mirror does not open image links to users
    start();
    EXPECT_EQ(post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", url}}).status, 400);
    stop();
    config.allowPrivateImageUrls = true;
    start();
    r = post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", url}});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["status"], "success");
    r = post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", host.url("/nope.png")}});
    EXPECT_EQ(r.status, 400);
}

TEST_F(GenerationApi, UploadedImageWorksAsInitImage) {
    const auto up = post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", pngBase64(64, 64, 90)}});
    ASSERT_EQ(up.status, 200) << up.body;
    const std::string link = up.json()["link"];
    const auto r = post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", link}});
    EXPECT_EQ(r.status, 200) << r.body;
    // Another account cannot use it.
    const std::string other = signup("b@example.com")["api_key"];
    EXPECT_EQ(post("/api/v6/images/img2img", {{"key", other}, {"prompt", "x"}, {"init_image", link}}).status, 400);
    EXPECT_EQ(post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", "aGVsbG8="}}).status, 400);
}

TEST_F(GenerationApi, ALargeBodyWithABadHeaderKeyIsRefusedBeforeItIsParsed) {
    const nlohmann::json body{{"prompt", "x"}, {"init_image", encodeBase64(noisePng(700))}};  // a 2 MB body
    const auto bad = post("/api/v6/images/img2img", body, {{"X-API-Key", "not-a-key"}});
    EXPECT_EQ(bad.status, 401) << bad.body.substr(0, 300);
    EXPECT_NE(bad.body.find("read only for a valid key"), std::string::npos) << bad.body;
    const auto good = post("/api/v6/images/img2img", body, {{"Authorization", "Bearer " + key}});
    EXPECT_EQ(good.status, 200) << good.body.substr(0, 300);
    EXPECT_EQ(good.json()["status"], "success");
}

TEST_F(GenerationApi, UploadsUpToFiveMegabytesAreAcceptedAndLargerOnesRefusedClearly) {
    // Noise does not compress: 700x700 is a ~1.5 MB PNG (a 2 MB body), 1250x1250 a ~4.7 MB one.
    for (const int side : {700, 1250}) {
        const auto png = noisePng(side);
        ASSERT_LE(png.size(), 5u * 1024 * 1024) << side;
        const auto r = post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", encodeBase64(png)}});
        EXPECT_EQ(r.status, 200) << side << ": " << r.body.substr(0, 300);
        nextMinute();
    }
    // The same as an init image inline: a body well over 1 MiB on a generation route.
    const auto inline700 =
        post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", encodeBase64(noisePng(700))}});
    EXPECT_EQ(inline700.status, 200) << inline700.body.substr(0, 300);
    const auto tooBig = noisePng(1400);  // ~5.9 MB
    ASSERT_GT(tooBig.size(), 5u * 1024 * 1024);
    const auto r = post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", encodeBase64(tooBig)}});
    EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
    EXPECT_NE(r.body.find("at most 5 MB"), std::string::npos) << r.body.substr(0, 300);
    // A small file of too many pixels is refused from its header (2048 x 2048 at most).
    nextMinute();
    const auto wide = post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", pngBase64(2100, 2048, 7)}});
    EXPECT_EQ(wide.status, 400);
    EXPECT_NE(wide.body.find("2100x2048, larger than allowed"), std::string::npos) << wide.body;
    EXPECT_EQ(post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", pngBase64(2048, 2048, 7)}}).status, 200);
}

TEST_F(GenerationApi, ProcessingThenFetch) {
    generator.block();
    const auto r = text2img(key, {{"instant_response", true}});
    ASSERT_EQ(r.status, 200);
    const auto j = r.json();
    EXPECT_EQ(j["status"], "processing");
    EXPECT_TRUE(j.contains("eta"));
    EXPECT_EQ(j["fetch_result"], "http://127.0.0.1:" + std::to_string(port) + "/api/v6/images/fetch/" +
                                     std::to_string(j["id"].get<int>()));
    EXPECT_EQ(post("/api/v6/images/fetch", {{"key", key}, {"request_id", j["id"]}}).json()["status"], "processing");
    generator.release();
    ASSERT_TRUE(backend->runner().waitFinished(j["id"], std::chrono::milliseconds(10'000)));
    const auto f = post("/api/v6/images/fetch", {{"key", key}, {"request_id", j["id"]}}).json();
    EXPECT_EQ(f["status"], "success");
    EXPECT_EQ(f["output"].size(), 1u);
}

TEST_F(GenerationApi, AQueuedReplyGivesTheFutureLinksAndTheSeed) {
    generator.block();
    const auto r = text2img(key, {{"instant_response", true}, {"samples", 2}}).json();
    ASSERT_EQ(r["status"], "processing") << r.dump();
    ASSERT_EQ(r["future_links"].size(), 2u) << r.dump();
    // A random seed is drawn when the request is accepted, so the first reply can report it.
    ASSERT_TRUE(r["meta"]["seed"].is_number_integer()) << r.dump();
    const std::string link = r["future_links"][1];
    ASSERT_EQ(link.rfind("http://127.0.0.1:" + std::to_string(port) + "/images/", 0), 0u) << link;
    EXPECT_EQ(get(link.substr(link.find("/images/"))).status, 404);  // not drawn yet
    generator.release();
    ASSERT_TRUE(backend->runner().waitFinished(r["id"], std::chrono::milliseconds(10'000)));
    const auto f = post("/api/v6/images/fetch", {{"key", key}, {"request_id", r["id"]}}).json();
    EXPECT_EQ(f["status"], "success");
    EXPECT_EQ(f["output"], r["future_links"]);  // the promised links are where the images are
    EXPECT_EQ(f["meta"]["seed"], r["meta"]["seed"]);
    const auto png = get(link.substr(link.find("/images/")));
    ASSERT_EQ(png.status, 200);
    const auto image = inference::decodeImage(std::vector<std::uint8_t>(png.body.begin(), png.body.end()));
    EXPECT_EQ(image.rgb[5], (r["meta"]["seed"].get<std::int64_t>() + 1) % 256);  // sample 1 uses seed + 1
}

TEST_F(GenerationApi, EtaCountsTheImagesAheadAndTheQueueTotalOnlyActiveJobs) {
    text2img(key, {{"prompt", "finished"}});
    generator.block();
    text2img(key, {{"instant_response", true}, {"prompt", "running"}});
    ASSERT_TRUE(generator.waitStarted(2));
    const auto first = text2img(key, {{"instant_response", true}, {"samples", 3}}).json();
    const auto second = text2img(key, {{"instant_response", true}}).json();
    EXPECT_EQ(first["queue_position"], 0);
    EXPECT_EQ(second["queue_position"], 1);
    // first waits for the running image, then draws 3; second waits for those 4, then draws 1.
    const double perImage = backend->runner().secondsPerImage();
    EXPECT_NEAR(first["eta"].get<double>(), 4 * perImage, 1e-6);
    EXPECT_NEAR(second["eta"].get<double>(), 5 * perImage, 1e-6);
    const auto queue = get("/api/v1/queue", {{"X-API-Key", key}}).json();
    EXPECT_EQ(queue["total"], 3);
    EXPECT_EQ(queue["items"].size(), 3u);
    EXPECT_EQ(get("/api/v1/history", {{"X-API-Key", key}}).json()["total"], 4);
    generator.release();
}

TEST_F(GenerationApi, OnlyAFewRequestsAreHeldOpenWaitingForTheirJob) {
    stop();
    config.generation.maxWaiting = 1;
    start();
    generator.block();
    std::atomic<bool> firstAnswered = false;
    std::string firstStatus;
    std::thread first([&] {
        firstStatus = text2img(key, {{"prompt", "waits"}}).json().value("status", "");
        firstAnswered = true;
    });
    ASSERT_TRUE(generator.waitStarted(1));
    ASSERT_TRUE(eventually([&] { return backend->generation().waiting() != 0; }));
    ASSERT_EQ(backend->generation().waiting(), 1);
    // The one waiting place is taken: the next request is answered at once, not after the 5 s wait.
    const auto second = text2img(key, {{"prompt", "second"}}).json();
    EXPECT_EQ(second["status"], "processing");
    EXPECT_FALSE(firstAnswered.load());
    generator.release();
    first.join();
    EXPECT_EQ(firstStatus, "success");
}

TEST_F(GenerationApi, AGeneratedImagesLinkWorksAsTheNextInitImage) {
    const std::string link = text2img(key, {{"seed", 99}}).json()["output"][0];
    // The server's own address is loopback, which URL fetches refuse; its own images are read directly.
    const auto r = post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", link}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["status"], "success");
    const auto missing = link.substr(0, link.rfind('/') + 1) + "nope.png";
    EXPECT_EQ(post("/api/v6/images/img2img", {{"key", key}, {"prompt", "x"}, {"init_image", missing}}).status, 400);
}

TEST_F(GenerationApi, FetchOfARunningJobCarriesProgressAndALivePreview) {
    generator.pauseAtStep(2);  // the fake sends a preview at even steps: an 8x8 square of level `step`
    const auto r = text2img(key, {{"instant_response", true}, {"num_inference_steps", 4}});
    ASSERT_EQ(r.status, 200);
    ASSERT_TRUE(generator.waitPaused());
    const auto f = post("/api/v6/images/fetch", {{"key", key}, {"request_id", r.json()["id"]}}).json();
    generator.resume();
    EXPECT_EQ(f["status"], "processing");
    ASSERT_TRUE(f.contains("progress")) << f.dump();
    EXPECT_EQ(f["progress"]["step"], 2);
    EXPECT_EQ(f["progress"]["total"], 4);
    const std::string preview = f["progress"].value("preview", "");
    const std::string prefix = "data:image/png;base64,";
    ASSERT_EQ(preview.rfind(prefix, 0), 0u) << preview.substr(0, 40);
    const auto png = decodeBase64(preview.substr(prefix.size()));
    ASSERT_TRUE(png.has_value());
    const auto image = inference::decodeImage(*png);
    EXPECT_EQ(image.width, 8);
    EXPECT_EQ(image.height, 8);
    EXPECT_EQ(image.rgb[0], 2);  // the preview of step 2, not of another step
    ASSERT_TRUE(backend->runner().waitFinished(r.json()["id"], std::chrono::milliseconds(10'000)));
    const auto done = post("/api/v6/images/fetch", {{"key", key}, {"request_id", r.json()["id"]}}).json();
    EXPECT_EQ(done["status"], "success");
    EXPECT_FALSE(done.contains("progress"));
}

TEST_F(GenerationApi, CancelAQueuedJobRefundsIt) {
    generator.block();
    const auto running = text2img(key, {{"instant_response", true}, {"prompt", "first"}}).json();
    ASSERT_TRUE(generator.waitStarted(1));
    const auto queued = text2img(key, {{"instant_response", true}, {"prompt", "second"}, {"samples", 3}}).json();
    EXPECT_EQ(queued["queue_position"], 0);
    const auto c = post("/api/v6/images/cancel", {{"key", key}, {"request_id", queued["id"]}});
    ASSERT_EQ(c.status, 200) << c.body;
    const auto cancelled = post("/api/v6/images/fetch", {{"key", key}, {"request_id", queued["id"]}}).json();
    EXPECT_EQ(cancelled["status"], "cancelled");
    EXPECT_EQ(cancelled["messege"], cancelled["message"]);  // the hosted API's spelling, as on every status
    // Cancelling a running job stops it at the next step.
    EXPECT_EQ(post("/api/v6/images/cancel", {{"key", key}, {"request_id", running["id"]}}).status, 200);
    generator.release();
    ASSERT_TRUE(backend->runner().waitFinished(running["id"], std::chrono::milliseconds(10'000)));
    EXPECT_EQ(post("/api/v6/images/fetch", {{"key", key}, {"request_id", running["id"]}}).json()["status"],
              "cancelled");
    const auto caller = backend->accounts().authenticateKey(key);
    EXPECT_EQ(backend->accounts().account(caller.userId).imagesUsed, 0);
    EXPECT_EQ(generator.started(), std::vector<std::string>{"first"});
    EXPECT_EQ(post("/api/v6/images/cancel", {{"key", key}, {"request_id", queued["id"]}}).status, 409);
}

TEST_F(GenerationApi, FailedGenerationIsRefunded) {
    const auto r = text2img(key, {{"prompt", "explode please"}, {"samples", 2}});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.json()["status"], "failed");
    EXPECT_NE(r.json()["message"].get<std::string>().find("out of memory"), std::string::npos);
    const auto caller = backend->accounts().authenticateKey(key);
    EXPECT_EQ(backend->accounts().account(caller.userId).imagesUsed, 0);
}

TEST_F(GenerationApi, QueueCapGives429WithRetryAfter) {
    backend->accounts().setPlan("a@example.com", "free");  // 2 queued at most
    generator.block();
    EXPECT_EQ(text2img(key, {{"instant_response", true}}).status, 200);
    EXPECT_EQ(text2img(key, {{"instant_response", true}}).status, 200);
    const auto r = text2img(key, {{"instant_response", true}});
    EXPECT_EQ(r.status, 429);
    EXPECT_TRUE(r.json().contains("retry_after"));
    EXPECT_FALSE(r.header("retry-after").empty());
}

TEST_F(GenerationApi, HigherPlansRunFirst) {
    const std::string freeKey = signup("free@example.com")["api_key"];
    const std::string basicKey = signup("basic@example.com")["api_key"];
    backend->accounts().setPlan("basic@example.com", "basic");
    generator.block();
    text2img(key, {{"instant_response", true}, {"prompt", "blocker"}});
    ASSERT_TRUE(generator.waitStarted(1));
    text2img(freeKey, {{"instant_response", true}, {"prompt", "free 1"}});
    text2img(freeKey, {{"instant_response", true}, {"prompt", "free 2"}});
    text2img(basicKey, {{"instant_response", true}, {"prompt", "basic"}});
    text2img(key, {{"instant_response", true}, {"prompt", "premium"}});
    generator.release();
    EXPECT_TRUE(eventually([&] { return generator.completed() == 5; }));
    EXPECT_EQ(generator.started(), (std::vector<std::string>{"blocker", "premium", "basic", "free 1", "free 2"}));
}

TEST_F(GenerationApi, HistoryPagesNewestFirstAndDeletes) {
    for (int i = 0; i < 3; ++i) text2img(key, {{"prompt", "p" + std::to_string(i)}});
    auto h = get("/api/v1/history?limit=2&offset=0", {{"X-API-Key", key}}).json();
    EXPECT_EQ(h["total"], 3);
    ASSERT_EQ(h["items"].size(), 2u);
    EXPECT_EQ(h["items"][0]["meta"]["prompt"], "p2");
    const std::string url = h["items"][0]["output"][0];
    const auto id = h["items"][0]["id"].get<int>();
    EXPECT_EQ(httpRequest(port, "DELETE", "/api/v1/history/" + std::to_string(id), "{}", {{"X-API-Key", key}}).status,
              200);
    EXPECT_EQ(get(url.substr(url.find("/images/"))).status, 404);
    h = get("/api/v1/history?offset=2", {{"X-API-Key", key}}).json();
    EXPECT_EQ(h["items"].size(), 0u);
    EXPECT_EQ(get("/api/v1/history?limit=abc", {{"X-API-Key", key}}).status, 400);
}

TEST_F(GenerationApi, ImagesExpireAfterRetention) {
    const auto keep = text2img(key).json()["output"][0].get<std::string>();
    const auto temp = text2img(key, {{"temp", "yes"}}).json()["output"][0].get<std::string>();
    clock.advance(2 * 24 * 3600);
    backend->sweep();
    EXPECT_EQ(get(keep.substr(keep.find("/images/"))).status, 200);
    EXPECT_EQ(get(temp.substr(temp.find("/images/"))).status, 404);  // temp: 24 hours
    clock.advance(29 * 24 * 3600);
    backend->sweep();
    EXPECT_EQ(get(keep.substr(keep.find("/images/"))).status, 404);  // 30 days
    // Its request no longer says "success" with no output (clients read output[0] on success).
    const auto history = get("/api/v1/history", {{"X-API-Key", key}}).json();
    ASSERT_EQ(history["items"].size(), 2u);
    EXPECT_EQ(history["items"][1]["status"], "error");
    EXPECT_NE(history["items"][1]["message"].get<std::string>().find("expired"), std::string::npos);
    const auto caller = backend->accounts().authenticateKey(key);
    EXPECT_EQ(backend->runner().sweepExpired(), 0);
    EXPECT_EQ(blobs().count(caller.userId), 0u);
}

TEST_F(GenerationApi, ABase64AnswerLeavesOutAnImagePastItsExpiryBeforeTheSweep) {
    const auto r = text2img(key, {{"base64", true}, {"temp", true}}).json();
    ASSERT_EQ(r["status"], "success") << r.dump();
    clock.advance(2 * 24 * 3600);  // past the 24 hours of "temp"; no sweep has run
    const auto f = post("/api/v6/images/fetch", {{"key", key}, {"request_id", r["id"]}}).json();
    EXPECT_EQ(f["output"], json::array());  // not [""]
    EXPECT_EQ(f["status"], "error");
    EXPECT_NE(f["message"].get<std::string>().find("expired"), std::string::npos);
}

TEST_F(GenerationApi, FilesACrashLeftWithoutARowAreSweptAndLiveOnesKept) {
    if (testsUseS3()) GTEST_SKIP() << "backdates files' times, which a bucket's objects cannot have";
    const std::string kept = text2img(key).json()["output"][0];
    const std::string upload =
        post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", pngBase64(64, 64, 90)}}).json()["link"];
    // A running and a queued img2img job: their init images are stored but not yet in any image row.
    generator.block();
    const auto running =
        post("/api/v6/images/img2img",
             {{"key", key}, {"prompt", "x"}, {"init_image", pngBase64(64, 64, 10)}, {"instant_response", true}})
            .json();
    const auto queued =
        post("/api/v6/images/img2img",
             {{"key", key}, {"prompt", "y"}, {"init_image", pngBase64(64, 64, 20)}, {"instant_response", true}})
            .json();
    ASSERT_TRUE(generator.waitStarted(1));
    const auto caller = backend->accounts().authenticateKey(key);
    const auto folder = config.dataDir / "files" / std::to_string(caller.userId);
    // What kill -9 leaves: a PNG whose row was never committed, a half-written file, a refused input.
    for (const auto* name : {"0badc0de.png", "0badc0de.png.tmp", "input-0badc0de"})
        std::ofstream(folder / name) << "left by a crash";
    auto names = [&] {
        std::set<std::string> out;
        for (const auto& f : std::filesystem::directory_iterator(folder)) out.insert(f.path().filename().string());
        return out;
    };
    const auto live = names().size() - 3;
    EXPECT_EQ(live, 4u);                                 // the kept PNG, the upload, two inputs
    EXPECT_EQ(backend->runner().sweepOrphans(3600), 0);  // everything is younger than an hour
    EXPECT_EQ(names().size(), live + 3);
    const auto twoHoursAgo = std::filesystem::file_time_type::clock::now() - std::chrono::hours(2);
    for (const auto& f : std::filesystem::directory_iterator(folder)) std::filesystem::last_write_time(f, twoHoursAgo);
    std::ofstream(folder / "1badc0de.png") << "written just now";
    std::ofstream(folder / ".keep") << "not a name the store writes";  // left alone, and no error
    std::filesystem::last_write_time(folder / ".keep", twoHoursAgo);
    EXPECT_EQ(backend->runner().sweepOrphans(3600), 3);
    const auto after = names();
    EXPECT_EQ(after.size(), live + 2);
    EXPECT_TRUE(after.contains(".keep"));
    for (const auto* gone : {"0badc0de.png", "0badc0de.png.tmp", "input-0badc0de"}) EXPECT_FALSE(after.contains(gone));
    EXPECT_TRUE(after.contains("1badc0de.png"));
    EXPECT_EQ(get(kept.substr(kept.find("/images/"))).status, 200);
    // Both jobs still find their init images; the upload still works as one.
    generator.release();
    for (const auto& j : {running, queued}) {
        ASSERT_TRUE(backend->runner().waitFinished(j["id"], std::chrono::milliseconds(10'000)));
        EXPECT_EQ(post("/api/v6/images/fetch", {{"key", key}, {"request_id", j["id"]}}).json()["status"], "success");
    }
    EXPECT_EQ(post("/api/v6/images/img2img", {{"key", key}, {"prompt", "z"}, {"init_image", upload}}).status, 200);
}

TEST_F(GenerationApi, JobsInterruptedByACrashRunAgainOnce) {
    generator.block();
    const auto j = text2img(key, {{"instant_response", true}, {"prompt", "survivor"}}).json();
    const auto queued = text2img(key, {{"instant_response", true}, {"prompt", "waiting"}}).json();
    ASSERT_TRUE(generator.waitStarted(1));
    // Simulate kill -9: the rows stay as they are while nothing runs them.
    storage::Database side(databaseLocation());
    generator.release();
    stop();
    side.exec("UPDATE jobs SET status = 'running' WHERE id = " + std::to_string(j["id"].get<int>()));
    side.exec("UPDATE jobs SET status = 'queued' WHERE id = " + std::to_string(queued["id"].get<int>()));
    side.exec("DELETE FROM images WHERE job_id = " + std::to_string(queued["id"].get<int>()));
    start();
    // On a shared database (PostgreSQL) the restarted server cannot tell a dead server's job from a live
    // one's until the lease runs out.
    if (!config.database.empty()) clock.advance(config.runner.leaseSeconds + 1);
    ASSERT_TRUE(backend->runner().waitFinished(j["id"], std::chrono::milliseconds(10'000)));
    ASSERT_TRUE(backend->runner().waitFinished(queued["id"], std::chrono::milliseconds(10'000)));
    for (const auto& id : {j["id"], queued["id"]}) {
        const auto f = post("/api/v6/images/fetch", {{"key", key}, {"request_id", id}}).json();
        EXPECT_EQ(f["status"], "success");
        EXPECT_EQ(f["output"].size(), 1u);  // not duplicated
    }
    const auto caller = backend->accounts().authenticateKey(key);
    EXPECT_EQ(backend->accounts().account(caller.userId).imagesUsed, 2);  // not charged twice
}

TEST_F(GenerationApi, ModelListAndRealtimeAliases) {
    const auto m = post("/api/v4/dreambooth/model_list", {{"key", key}});
    ASSERT_EQ(m.status, 200);
    EXPECT_EQ(m.json()["models"][0]["model_id"], "fake-model");
    EXPECT_EQ(get("/api/v1/models", {{"X-API-Key", key}}).json()["models"][0]["default"], true);
    const auto r = post("/api/v6/realtime/text2img", {{"key", key}, {"prompt", "x"}});
    EXPECT_EQ(r.json()["status"], "success");
    EXPECT_EQ(get("/health").json()["model"], "fake-model");
}

}  // namespace
}  // namespace easel::testing

namespace easel::testing {
namespace {

class Webhooks : public GenerationApi {
protected:
    void SetUp() override {
        config.webhooks.policy.allowPrivateAddresses = true;  // the receiver is on loopback
        config.webhooks.retryDelays = {std::chrono::milliseconds(50), std::chrono::milliseconds(50)};
        config.publicUrl = "https://easel.example";
        GenerationApi::SetUp();
    }
    // The first attempt got its answer and a retry waits for the clock.
    ::testing::AssertionResult retryWaits(WebhookReceiver& receiver, std::size_t attempts) {
        return eventually([&] { return receiver.snapshot().size() == attempts && backend->webhooks().pending() == 1; });
    }
};

TEST_F(Webhooks, SignedPayloadArrivesWithTrackId) {
    WebhookReceiver receiver;
    const auto r = text2img(key, {{"webhook", receiver.url()}, {"track_id", "order-77"}, {"seed", 5}});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(eventually([&] { return receiver.snapshot().size() == 1; }));
    const auto hook = receiver.snapshot()[0];
    const auto body = json::parse(hook.body);
    EXPECT_EQ(body["status"], "success");
    EXPECT_EQ(body["track_id"], "order-77");
    EXPECT_EQ(body["id"], r.json()["id"]);
    EXPECT_EQ(body["output"][0].get<std::string>().rfind("https://easel.example/images/", 0), 0u);
    // The signature checks out with the secret the account page shows.
    const auto token = login("a@example.com");
    const std::string secret = get("/api/v1/account", {{"Authorization", "Bearer " + token}}).json()["webhook_secret"];
    const auto timestamp = hook.header("X-Easel-Timestamp");
    EXPECT_EQ(hook.header("X-Easel-Signature"), "sha256=" + net::hmacSha256Hex(secret, timestamp + "." + hook.body));
}

TEST_F(Webhooks, WithoutAPublicURLTheLinksUseTheAddressTheClientCalled) {
    stop();
    config.publicUrl.clear();
    start();
    WebhookReceiver receiver;
    const auto r = post("/api/v6/images/text2img", {{"key", key}, {"prompt", "x"}, {"webhook", receiver.url()}},
                        {{"Host", "easel.lan:7860"}});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(eventually([&] { return receiver.snapshot().size() == 1; }));
    const auto body = json::parse(receiver.snapshot()[0].body);
    EXPECT_EQ(body["output"][0].get<std::string>().rfind("http://easel.lan:7860/images/", 0), 0u) << body.dump();
}

TEST_F(Webhooks, DeletingTheAccountDropsItsWaitingDeliveries) {
    const std::string otherKey = signup("b@example.com")["api_key"];
    WebhookReceiver receiver(1);  // the first attempt gets a 500, so a retry waits
    text2img(key, {{"webhook", receiver.url()}});
    ASSERT_TRUE(retryWaits(receiver, 1));
    const auto token = login("a@example.com");
    const auto r = httpRequest(port, "DELETE", "/api/v1/account", json{{"password", "correct horse"}}.dump(),
                               {{"Authorization", "Bearer " + token}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(backend->webhooks().pending(), 0);
    clock.advance(60);  // past the retry's time
    // Another account's webhook, due after the dropped retry, is sent next: had the retry stayed, it
    // would have gone first.
    const auto other = text2img(otherKey, {{"webhook", receiver.url()}}).json();
    ASSERT_TRUE(eventually([&] { return backend->webhooks().delivered() == 1; }));
    const auto got = receiver.snapshot();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(json::parse(got[1].body)["id"], other["id"]);
}

TEST_F(Webhooks, FailuresAreRetriedAfterTheirDelayAndFailedJobsReported) {
    WebhookReceiver receiver(2);  // two 500s, then 200
    text2img(key, {{"webhook", receiver.url()}, {"prompt", "explode"}});
    ASSERT_TRUE(retryWaits(receiver, 1));
    clock.advance(1);  // past the first retry's 50 ms
    ASSERT_TRUE(retryWaits(receiver, 2));
    clock.advance(1);
    ASSERT_TRUE(eventually([&] { return backend->webhooks().delivered() == 1; }));
    const auto got = receiver.snapshot();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(json::parse(got[2].body)["status"], "failed");
    EXPECT_EQ(got[0].body, got[2].body);
}

TEST_F(Webhooks, PrivateAddressesAreRefusedByDefault) {
    stop();
    config.webhooks.policy.allowPrivateAddresses = false;
    config.webhooks.retryDelays.clear();  // given up at the first refusal, with no retry to wait for
    start();
    WebhookReceiver receiver;
    text2img(key, {{"webhook", receiver.url()}});
    ASSERT_TRUE(eventually([&] { return backend->webhooks().abandoned() == 1; }));
    EXPECT_TRUE(receiver.snapshot().empty());
    EXPECT_EQ(text2img(key, {{"webhook", "ftp://example.com/x"}}).status, 400);
}

TEST(HttpClient, ARefusedRedirectNamesTheHostButNotThePathOrQuery) {
    server::Router router;
    router.add("GET", "/hook", [](const server::Request&) {
        server::Response out;
        out.status = 302;
        out.headers["Location"] = "/elsewhere";
        return out;
    });
    server::HttpServerOptions o;
    o.port = 0;
    server::HttpServer host(o, router);
    host.start();
    net::OutboundRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(host.port()) + "/hook?token=s3cret";
    r.maxRedirects = 0;  // as webhooks send
    try {
        net::httpFetch(r, net::UrlPolicy{true});
        ADD_FAILURE() << "a redirect was followed";
    } catch (const net::OutboundError& e) {
        const std::string message = e.what();  // it is logged
        EXPECT_NE(message.find("127.0.0.1"), std::string::npos) << message;
        EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
        EXPECT_EQ(message.find("/hook"), std::string::npos) << message;
    }
}

TEST(HttpClient, PrivateAddressClassification) {
    for (const auto* a : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                          "0.0.0.0", "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1", "100.64.0.1", "not an ip",
                          "64:ff9b::a00:1", "2002:c0a8:101::1", "::10.0.0.1", "fec0::1", "192.0.0.8", "198.18.0.1"}) {
        EXPECT_TRUE(net::isPrivateAddress(a)) << a;
    }
    for (const auto* a : {"8.8.8.8", "172.32.0.1", "1.1.1.1", "2001:4860:4860::8888", "192.169.0.1"}) {
        EXPECT_FALSE(net::isPrivateAddress(a)) << a;
    }
    // RFC 4231 test case 2.
    EXPECT_EQ(net::hmacSha256Hex("Jefe", "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace easel::testing
