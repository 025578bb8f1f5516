// OpenAI's Images API over real HTTP: generations, edits (transparent pixels are the area to edit),
// variations and models, in OpenAI's shapes and error objects, charged like the native API.

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "backend_fixture.h"
#include "common/base64.h"
#include "eventually.h"
#include "test_database.h"

namespace easel::testing {
namespace {

using nlohmann::json;

// An RGBA PNG: opaque grey, with the square [x0, x1) x [y0, y1) fully transparent (none when empty).
jobs::Bytes rgbaPng(int w, int h, int x0 = 0, int y0 = 0, int x1 = 0, int y1 = 0) {
    cv::Mat m(h, w, CV_8UC4, cv::Scalar(90, 120, 150, 255));
    for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) m.at<cv::Vec4b>(y, x)[3] = 0;
    }
    std::vector<std::uint8_t> out;
    cv::imencode(".png", m, out);
    return out;
}

struct Part {
    std::string name;
    std::string value;
    bool file = false;
};

std::string multipart(const std::vector<Part>& parts, const std::string& boundary) {
    std::string body;
    for (const auto& p : parts) {
        body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + p.name + "\"";
        if (p.file) body += "; filename=\"" + p.name + ".png\"\r\nContent-Type: image/png";
        body += "\r\n\r\n" + p.value + "\r\n";
    }
    return body + "--" + boundary + "--\r\n";
}

std::string bytesOf(const jobs::Bytes& b) { return {b.begin(), b.end()}; }

class OpenAiApi : public BackendTest {
protected:
    void SetUp() override {
        httpOptions.workerThreads = 16;  // as easel-server: room for the waiting requests and the rest
        BackendTest::SetUp();
        const auto account = signup("a@example.com");
        key = account["api_key"];
        userId = account["user_id"];
    }
    std::map<std::string, std::string> auth() const { return {{"Authorization", "Bearer " + key}}; }
    HttpResult generate(const json& body) { return post("/v1/images/generations", body, auth()); }
    HttpResult form(const std::string& path, const std::vector<Part>& parts) {
        auto h = auth();
        h["Content-Type"] = "multipart/form-data; boundary=easel-test-boundary";
        return httpRequest(port, "POST", path, multipart(parts, "easel-test-boundary"), h);
    }
    cv::Mat decode(const std::string& bytes) {
        return cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data())),
                            cv::IMREAD_UNCHANGED);
    }
    std::int64_t used() { return testing::imagesUsed(backend->db(), userId); }

    std::string key;
    std::int64_t userId = 0;
};

TEST_F(OpenAiApi, GenerationsAnswerWithLinksOrBase64AndAreCharged) {
    auto r = generate({{"model", "dall-e-3"}, {"prompt", "a red circle"}, {"n", 2}, {"size", "64x48"}});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = r.json();
    EXPECT_GT(j["created"].get<std::int64_t>(), 0);
    ASSERT_EQ(j["data"].size(), 2u);
    for (const auto& item : j["data"]) {
        const std::string url = item["url"];
        const auto path = url.substr(url.find("/images/"));
        const auto img = get(path);
        ASSERT_EQ(img.status, 200) << url;
        const auto m = decode(img.body);
        EXPECT_EQ(m.cols, 64);
        EXPECT_EQ(m.rows, 48);
        EXPECT_EQ(item["revised_prompt"], "a red circle");
    }
    EXPECT_EQ(generator.lastParams().samples, 2);
    EXPECT_EQ(generator.lastParams().modelId, "fake-model");  // OpenAI's names mean the default model
    EXPECT_EQ(used(), 2);

    nextMinute();
    r = generate({{"prompt", "a blue square"}, {"response_format", "b64_json"}, {"model", "fake-model"}});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto b64 = r.json()["data"][0]["b64_json"].get<std::string>();
    const auto png = decodeBase64(b64);
    ASSERT_TRUE(png);
    const auto m = decode(bytesOf(*png));
    EXPECT_EQ(m.cols, 64);  // the model's default size for "auto"
    EXPECT_EQ(m.rows, 64);
    EXPECT_EQ(used(), 3);
    EXPECT_EQ(r.headers.count("x-ratelimit-limit"), 1u);
}

TEST_F(OpenAiApi, ErrorsUseOpenAisObjectAndChargeNothing) {
    const auto error = [&](const HttpResult& r, int status, const std::string& param, const std::string& text) {
        EXPECT_EQ(r.status, status) << r.body;
        const auto e = r.json()["error"];
        ASSERT_TRUE(e.is_object()) << r.body;
        if (param.empty()) {
            EXPECT_TRUE(e["param"].is_null()) << r.body;
        } else {
            EXPECT_EQ(e["param"], param) << r.body;
        }
        EXPECT_NE(e["message"].get<std::string>().find(text), std::string::npos) << r.body;
        EXPECT_TRUE(e.contains("type") && e.contains("code")) << r.body;
    };
    error(generate({{"prompt", "x"}, {"size", "huge"}}), 400, "size", "must look like 512x512");
    error(generate({{"prompt", "x"}, {"response_format", "jpeg"}}), 400, "response_format", "url or b64_json");
    error(generate({{"prompt", "x"}, {"n", 0}}), 400, "n", "n must be");
    error(generate({{"size", "64x64"}}), 400, "prompt", "is required");
    error(generate({{"prompt", "x"}, {"model", "nope"}}), 400, "model", "'nope' is not a model");
    const auto anonymous = post("/v1/images/generations", {{"prompt", "x"}});
    error(anonymous, 401, "", "no API key");
    EXPECT_EQ(anonymous.json()["error"]["code"], "invalid_api_key");
    const auto wrong = post("/v1/images/generations", {{"prompt", "x"}}, {{"Authorization", "Bearer nope"}});
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(used(), 0);
    EXPECT_EQ(generator.completed(), 0);
}

TEST_F(OpenAiApi, AUsedUpQuotaIsOpenAis429InsufficientQuota) {
    for (int i = 0; i < 10; ++i) {  // the free plan's 20 images, 2 at a time, 10 requests a minute
        ASSERT_EQ(generate({{"prompt", "x"}, {"n", 2}}).status, 200) << i;
    }
    nextMinute();
    const auto r = generate({{"prompt", "x"}});
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "insufficient_quota") << r.body;
    EXPECT_EQ(used(), 20);
}

TEST_F(OpenAiApi, AnEditRepaintsTheTransparentPixels) {
    // The image's own transparency is the mask.
    auto r = form("/v1/images/edits",
                  {{"image", bytesOf(rgbaPng(64, 64, 16, 8, 48, 24)), true}, {"prompt", "a cat"}, {"n", "1"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(generator.lastParams().kind, "inpaint");
    EXPECT_EQ(generator.lastParams().prompt, "a cat");
    auto mask = decode(bytesOf(generator.lastMask()));
    ASSERT_EQ(mask.cols, 64);
    ASSERT_EQ(mask.rows, 64);
    cv::Mat grey;
    cv::cvtColor(mask, grey, cv::COLOR_BGR2GRAY);
    EXPECT_EQ(grey.at<std::uint8_t>(10, 20), 255);  // inside the transparent square: repaint
    EXPECT_EQ(grey.at<std::uint8_t>(30, 20), 0);    // outside: keep
    EXPECT_EQ(cv::countNonZero(grey), 32 * 16);

    // A separate mask: its transparent pixels decide, whatever the image's.
    nextMinute();
    r = form("/v1/images/edits", {{"image", bytesOf(rgbaPng(64, 64)), true},
                                  {"mask", bytesOf(rgbaPng(64, 64, 0, 0, 8, 8)), true},
                                  {"prompt", "a dog"},
                                  {"response_format", "b64_json"}});
    ASSERT_EQ(r.status, 200) << r.body;
    cv::cvtColor(decode(bytesOf(generator.lastMask())), grey, cv::COLOR_BGR2GRAY);
    EXPECT_EQ(cv::countNonZero(grey), 64);
    EXPECT_EQ(used(), 2);

    // Nothing transparent and no mask: nothing to edit, a 400 naming the image.
    r = form("/v1/images/edits", {{"image", bytesOf(rgbaPng(64, 64)), true}, {"prompt", "a dog"}});
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json()["error"]["param"], "image") << r.body;
    EXPECT_NE(r.body.find("no fully transparent pixels"), std::string::npos) << r.body;
    // A JSON body instead of a form.
    r = post("/v1/images/edits", {{"prompt", "a dog"}}, auth());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("multipart/form-data"), std::string::npos) << r.body;
    EXPECT_EQ(used(), 2);
}

TEST_F(OpenAiApi, AVariationIsAnImageToImageOfTheInputsSizeWithoutAPrompt) {
    const auto r = form("/v1/images/variations", {{"image", bytesOf(rgbaPng(48, 32)), true}, {"n", "2"}});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(r.json()["data"].size(), 2u);
    const auto p = generator.lastParams();
    EXPECT_EQ(p.kind, "img2img");
    EXPECT_EQ(p.prompt, "");
    EXPECT_EQ(p.width, 48);  // the input's size when no size is given
    EXPECT_EQ(p.height, 32);
    EXPECT_DOUBLE_EQ(p.strength, 0.6);
}

TEST_F(OpenAiApi, ModelsAreListedInOpenAisShape) {
    const auto r = get("/v1/models", auth());
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = r.json();
    EXPECT_EQ(j["object"], "list");
    ASSERT_EQ(j["data"].size(), 1u);
    EXPECT_EQ(j["data"][0]["id"], "fake-model");
    EXPECT_EQ(j["data"][0]["object"], "model");
    EXPECT_EQ(get("/v1/models/fake-model", auth()).json()["id"], "fake-model");
    EXPECT_EQ(get("/v1/models/nope", auth()).status, 404);
}

TEST_F(OpenAiApi, WaitingRequestsAreCappedAndTheRestRefusedBeforeTheCharge) {
    generator.block();
    std::string premium = backend->accounts().createUser("p@example.com", "correct horse", "premium").apiKey;
    std::vector<std::thread> waiting;
    std::vector<int> statuses(4, 0);
    for (int i = 0; i < 4; ++i) {  // GenerationOptions::maxLongWaits
        waiting.emplace_back([&, i] {
            statuses[i] = post("/v1/images/generations", {{"prompt", "wait " + std::to_string(i)}},
                               {{"Authorization", "Bearer " + premium}})
                              .status;
        });
    }
    ASSERT_TRUE(generator.waitStarted(1));
    eventually([&] { return backend->platform().generation().longWaits() == 4; });
    const auto refused =
        post("/v1/images/generations", {{"prompt", "one more"}}, {{"Authorization", "Bearer " + premium}});
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_EQ(refused.headers.count("retry-after"), 1u);
    generator.release();
    for (auto& t : waiting) t.join();
    for (int s : statuses) EXPECT_EQ(s, 200);
    EXPECT_EQ(generator.completed(), 4);  // the refused one never ran
}

}  // namespace
}  // namespace easel::testing
