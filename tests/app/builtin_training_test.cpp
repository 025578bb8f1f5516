// Fine-tuning over HTTP with the real trainer and the built-in model: pictures of a shape the model never
// saw (a heart), served on a loopback host with a caption each, go through lora_fine_tune and fine_tune
// to a model of the caller's own; its pictures differ from the base model's, only its owner may use it.
// (How well the result draws hearts is measured in-process: tests/core/inference/training/fine_tune_test.)

#include <gtest/gtest.h>

#include "builtin_model_dir.h"
#include "engine_server.h"
#include "eventually.h"
#include "http_client.h"
#include "inference/image/image.h"
#include "inference/training/shapes_dataset.h"
#include "loopback_host.h"

namespace easel::testing {
namespace {

using nlohmann::json;
using namespace inference::training;

struct LoadedEngine : inference::Engine {
    LoadedEngine() { loadModel(builtinModelDir()); }
};

Scene heartScene(int color, Position position, int background) {
    Scene s;
    s.shapes.push_back({ShapeKind::Heart, color, ShapeSize::Large, position});
    s.background = background;
    return s;
}

// The hearts, as PNGs served at /heart/<n>, captioned with "zwx" where the caption says "heart".
class HeartHost {
public:
    HeartHost() {
        m_scenes = {heartScene(0, Position::Center, 0),      heartScene(2, Position::TopLeft, 1),
                    heartScene(3, Position::BottomRight, 2), heartScene(5, Position::TopRight, 0),
                    heartScene(1, Position::BottomLeft, 1),  heartScene(4, Position::Center, 2)};
        m_host.router().add("GET", "/heart/{n}", [this](const server::Request& r) {
            const auto n = static_cast<std::size_t>(std::stoi(r.pathParams.at("n")));
            const cv::Mat m = renderScene(m_scenes.at(n), 64);
            return pngResponse(inference::encodePng(
                inference::Image{64, 64, std::vector<std::uint8_t>(m.data, m.data + m.total() * 3)}));
        });
        m_host.start();
    }
    json urls() const {
        json out = json::array();
        for (std::size_t i = 0; i < m_scenes.size(); ++i) out.push_back(m_host.url("/heart/" + std::to_string(i)));
        return out;
    }
    json captions() const {
        json out = json::array();
        for (const auto& s : m_scenes) {
            auto c = s.caption();
            out.push_back(c.replace(c.find("heart"), 5, "zwx"));
        }
        return out;
    }

private:
    std::vector<Scene> m_scenes;
    LoopbackHost m_host;
};

class BuiltinTraining : public ::testing::Test {
protected:
    std::string signup(const std::string& email) {
        const auto r =
            postJson(server.http.port(), "/api/v1/auth/signup", {{"email", email}, {"password", "correct horse"}});
        return r.json()["api_key"];
    }
    json train(const std::string& route, const std::string& key, int steps) {
        const auto r = postJson(server.http.port(), route,
                                {{"key", key},
                                 {"instance_prompt", "a large red zwx in the center on a white background"},
                                 {"class_prompt", "a large red circle in the center on a white background"},
                                 {"images", hearts.urls()},
                                 {"captions", hearts.captions()},
                                 {"max_train_steps", std::to_string(steps)},
                                 {"seed", 7}});
        EXPECT_EQ(r.status, 200) << r.body;
        return r.json();
    }
    // Polls the status until the training ends; returns every stage seen, in order, and the last answer.
    std::pair<std::vector<std::string>, json> follow(const std::string& key, std::int64_t id) {
        std::vector<std::string> stages;
        json last;
        const bool ended = eventually(
            [&] {
                last = postJson(server.http.port(), "/api/v3/fine_tune_status/" + std::to_string(id), {{"key", key}})
                           .json();
                const std::string stage = last.value("messege", "");
                if (stages.empty() || stages.back() != stage) stages.push_back(stage);
                return stage == "model_ready" || stage == "failed" || stage == "cancelled";
            },
            std::chrono::minutes(10), std::chrono::milliseconds(50));
        EXPECT_TRUE(ended) << last.dump();
        return {stages, last};
    }
    inference::Image text2img(const std::string& key, json extra, int* status = nullptr) {
        json body{{"key", key}, {"prompt", "a large blue zwx at the top left on a black background"}, {"seed", 3}};
        body.update(extra);
        const auto r = postJson(server.http.port(), "/api/v3/text2img", body);
        if (status != nullptr) *status = r.status;
        if (r.status != 200) return {};
        const std::string url = r.json()["output"][0];
        const auto png = httpRequest(server.http.port(), "GET", url.substr(url.find("/images/")));
        return inference::decodeImage(std::vector<std::uint8_t>(png.body.begin(), png.body.end()));
    }
    static double meanAbsDifference(const inference::Image& a, const inference::Image& b) {
        double sum = 0;
        for (std::size_t i = 0; i < a.rgb.size(); ++i) sum += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
        return sum / static_cast<double>(a.rgb.size());
    }

    EngineServer<LoadedEngine> server;
    HeartHost hearts;
};

TEST_F(BuiltinTraining, LoRAFineTuneOverHttpGivesTheOwnerALoRAThatChangesThePicture) {
    const auto key = signup("ada@example.com");
    const auto other = signup("bob@example.com");
    const auto submitted = train("/api/v3/lora_fine_tune", key, 30);
    ASSERT_EQ(submitted["messege"], "deploying_gpu") << submitted.dump();
    const auto [stages, done] = follow(key, submitted["training_id"].get<std::int64_t>());
    ASSERT_EQ(done["messege"], "model_ready") << done.dump();
    EXPECT_EQ(stages.back(), "model_ready");
    EXPECT_NE(std::find(stages.begin(), stages.end(), "training_started"), stages.end());
    EXPECT_EQ(done["step"], 30);
    EXPECT_EQ(done["loss"].size(), 30u);
    for (const auto& point : done["loss"]) EXPECT_TRUE(std::isfinite(point[1].get<double>()));

    const std::string lora = submitted["model_id"];
    const auto base = text2img(key, json::object());
    const auto tuned = text2img(key, {{"lora_model", lora}, {"lora_strength", 1}});
    ASSERT_EQ(tuned.width, 64);
    EXPECT_GT(meanAbsDifference(base, tuned), 1.0) << "the LoRA changes the picture";
    int status = 0;
    (void)text2img(other, {{"lora_model", lora}}, &status);
    EXPECT_EQ(status, 400) << "another account cannot use it";
}

TEST_F(BuiltinTraining, DreamBoothOverHttpGivesTheOwnerAModelThatGenerates) {
    const auto key = signup("ada@example.com");
    const auto submitted = train("/api/v3/fine_tune", key, 20);
    const auto [stages, done] = follow(key, submitted["training_id"].get<std::int64_t>());
    ASSERT_EQ(done["messege"], "model_ready") << done.dump();
    const std::string model = submitted["model_id"];
    const auto base = text2img(key, json::object());
    const auto tuned = text2img(key, {{"model_id", model}});
    ASSERT_EQ(tuned.width, 64) << "the trained model keeps the base's size";
    EXPECT_GT(meanAbsDifference(base, tuned), 1.0);
    // Its folder holds the checkpoint, the sidecar and the grown word list.
    const auto models = postJson(server.http.port(), "/api/v4/dreambooth/model_list", {{"key", key}});
    EXPECT_NE(models.body.find(model), std::string::npos) << models.body;
}

}  // namespace
}  // namespace easel::testing
