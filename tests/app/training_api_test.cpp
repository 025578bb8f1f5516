// The fine-tuning endpoints (fine_tune, lora_fine_tune, fine_tune_status, cancel_training and
// cancle_training, finetune/delete, finetune_list) through real HTTP, over the fake trainer: images as
// data URLs, upload links and loopback links, the stages up to model_ready, the trained model usable by
// its owner only, webhooks at each stage, and the errors.

#include <set>
#include <thread>

#include "backend_fixture.h"
#include "common/base64.h"
#include "eventually.h"
#include "loopback_host.h"
#include "noise_png.h"
#include "webhook_receiver.h"

namespace easel::testing {
namespace {

using nlohmann::json;

const std::vector<std::string> kAllStages{"training_started", "training_success", "trained_model_compressing",
                                          "deploying_model", "model_ready"};

std::string dataUrl(const std::vector<std::uint8_t>& bytes) { return "data:image/png;base64," + encodeBase64(bytes); }

class TrainingApi : public BackendTest {
protected:
    void SetUp() override {
        config.allowPrivateImageUrls = true;                  // the image host below is on loopback
        config.webhooks.policy.allowPrivateAddresses = true;  // and so is the webhook receiver
        BackendTest::SetUp();
        key = signup("ada@example.com")["api_key"];
        other = signup("bob@example.com")["api_key"];
        imageHost.router().add("GET", "/img/{n}", [](const server::Request& r) {
            return pngResponse(noisePng(16 + std::stoi(r.pathParams.at("n"))));
        });
        imageHost.router().add("GET", "/text", [](const server::Request&) {
            return server::Response::json(200, {{"no", 1}});
        });
        imageHost.start();
    }
    std::string hostUrl(const std::string& path) const { return imageHost.url(path); }
    json body(const std::string& apiKey, json extra = json::object()) const {
        json b{{"key", apiKey},
               {"instance_prompt", "a photo of sks dog"},
               {"class_prompt", "a photo of a dog"},
               {"base_model_id", "fake-model"},
               {"images", json::array({dataUrl(noisePng(16)), hostUrl("/img/1")})},
               {"max_train_steps", "4"}};
        b.update(extra);
        return b;
    }
    json status(const std::string& apiKey, std::int64_t id) {
        return post("/api/v3/fine_tune_status/" + std::to_string(id), {{"key", apiKey}}).json();
    }
    // Polls fine_tune_status until its messege is `stage`; returns the last answer.
    json waitForStage(const std::string& apiKey, std::int64_t id, const std::string& stage) {
        json last;
        EXPECT_TRUE(eventually([&] {
            last = status(apiKey, id);
            return last.value("messege", "") == stage;
        })) << last.dump();
        return last;
    }
    std::set<std::string> modelIds(const std::string& apiKey) {
        std::set<std::string> out;
        const auto list = get("/api/v1/models", {{"X-API-Key", apiKey}}).json();
        for (const auto& m : list["models"]) out.insert(m["model_id"].get<std::string>());
        return out;
    }

    std::string key;
    std::string other;
    LoopbackHost imageHost;
};

TEST_F(TrainingApi, FineTuneReachesModelReadyAndOnlyItsOwnerGeneratesWithIt) {
    WebhookReceiver receiver;
    const auto r = post("/api/v3/fine_tune", body(key, {{"webhook", receiver.url()},
                                                        {"track_id", "order-9"},
                                                        {"training_type", "men"},
                                                        {"seed", 42},
                                                        {"captions", {"a photo of sks dog on grass", ""}}}));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto submitted = r.json();
    EXPECT_EQ(submitted["status"], "success");
    EXPECT_EQ(submitted["messege"], "deploying_gpu");
    const std::int64_t id = submitted["training_id"];
    const std::string modelId = submitted["model_id"];
    EXPECT_EQ(modelId.rfind("ft-", 0), 0u);

    const auto done = waitForStage(key, id, "model_ready");
    EXPECT_EQ(done["status"], "success");
    EXPECT_EQ(done["model_id"], modelId);
    EXPECT_EQ(done["step"], 4);
    EXPECT_EQ(done["total_steps"], 4);
    EXPECT_EQ(done["loss"].size(), 4u);  // the curve, [[step, loss], ...]
    EXPECT_EQ(done["loss"][3], json::array({4, 0.25}));
    EXPECT_EQ(done["last_loss"], 0.25);
    EXPECT_EQ(done["training_type"], "men");
    EXPECT_EQ(done["track_id"], "order-9");
    EXPECT_NE(done["data"].get<std::string>().find("Step 4/4, loss 0.2500"), std::string::npos) << done["data"];
    // Both images reached the trainer: the data URL and the one fetched from the loopback host.
    ASSERT_EQ(trainer.lastImages().size(), 2u);
    EXPECT_EQ(trainer.lastImages()[1].encoded, noisePng(17));
    // Each with its caption (Easel's extension); an empty one is the instance prompt's.
    EXPECT_EQ(trainer.lastImages()[0].caption, "a photo of sks dog on grass");
    EXPECT_EQ(trainer.lastImages()[1].caption, "");
    EXPECT_EQ(trainer.lastParams().seed, 42u);

    EXPECT_TRUE(modelIds(key).contains(modelId));
    EXPECT_FALSE(modelIds(other).contains(modelId));
    const auto mine = text2img(key, {{"model_id", modelId}});
    EXPECT_EQ(mine.status, 200) << mine.body;
    EXPECT_EQ(mine.json()["status"], "success");
    const auto his = text2img(other, {{"model_id", modelId}});
    EXPECT_EQ(his.status, 400) << his.body;
    EXPECT_EQ(his.json()["status"], "error");

    // One signed webhook per stage, in order.
    ASSERT_TRUE(eventually([&] { return receiver.snapshot().size() == kAllStages.size(); }));
    std::vector<std::string> told;
    for (const auto& hook : receiver.snapshot()) {
        const auto payload = json::parse(hook.body);
        EXPECT_EQ(payload["webhook_type"], "training");
        EXPECT_EQ(payload["training_id"], id);
        EXPECT_EQ(payload["track_id"], "order-9");
        EXPECT_EQ(hook.header("X-Easel-Signature").rfind("sha256=", 0), 0u);
        told.push_back(payload["training_status"]);
    }
    EXPECT_EQ(told, kAllStages);
}

TEST_F(TrainingApi, LoraFineTuneFromAnUploadGivesALoRAForLoraModel) {
    const auto upload = post("/api/v6/base64_to_url", {{"key", key}, {"base64_string", encodeBase64(noisePng(20))}});
    ASSERT_EQ(upload.status, 200) << upload.body;
    const auto r =
        post("/api/v3/lora_fine_tune", body(key, {{"images", json::array({upload.json()["link"], hostUrl("/img/2")})},
                                                  {"max_train_steps", "3"},
                                                  {"lora_type", "lora"},
                                                  {"base_model_type", "sd1"},
                                                  {"negative_prompt", "blurry"}}));
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string modelId = r.json()["model_id"];
    const auto done = waitForStage(key, r.json()["training_id"], "model_ready");
    EXPECT_EQ(done["kind"], "lora_fine_tune");
    EXPECT_EQ(done["base_model_type"], "sd1");
    EXPECT_EQ(trainer.lastParams().method, jobs::TrainingMethod::LoRA);
    EXPECT_EQ(trainer.lastParams().negativePrompt, "blurry");
    EXPECT_EQ(trainer.lastImages()[0].encoded, noisePng(20));

    const auto mine = text2img(key, {{"lora_model", modelId}});
    EXPECT_EQ(mine.status, 200) << mine.body;
    EXPECT_EQ(generator.lastParams().loras.at(0).id, modelId);
    const auto his = text2img(other, {{"lora_model", modelId}});
    EXPECT_EQ(his.status, 400) << his.body;
}

TEST_F(TrainingApi, CancelTrainingAndTheHostedSpellingBothCancelAndGiveTheTrainingBack) {
    for (const std::string route : {"/api/v3/cancel_training/", "/api/v3/cancle_training/"}) {
        trainer.pauseAtStep(1);
        const auto r = post("/api/v3/fine_tune", body(key));
        ASSERT_EQ(r.status, 200) << route << ": " << r.body;  // the free plan's one training, given back
        const std::int64_t id = r.json()["training_id"];
        ASSERT_TRUE(trainer.waitPaused());
        EXPECT_EQ(status(key, id)["messege"], "training_started");
        const auto cancel = post(route + std::to_string(id), {{"key", key}});
        ASSERT_EQ(cancel.status, 200) << cancel.body;
        EXPECT_EQ(cancel.json()["status"], "success");
        trainer.resume();
        const auto cancelled = waitForStage(key, id, "cancelled");
        EXPECT_NE(cancelled["data"].get<std::string>().find("not charged"), std::string::npos);
        EXPECT_EQ(post(route + std::to_string(id), {{"key", key}}).status, 409);  // it has ended
    }
}

TEST_F(TrainingApi, TheListShowsTrainingsAndDeleteRemovesTheModel) {
    const auto r = post("/api/v3/fine_tune", body(key));
    ASSERT_EQ(r.status, 200) << r.body;
    const std::int64_t id = r.json()["training_id"];
    const std::string modelId = r.json()["model_id"];
    waitForStage(key, id, "model_ready");

    const auto list = post("/api/v3/finetune_list", {{"key", key}}).json();
    EXPECT_EQ(list["status"], "success");
    EXPECT_EQ(list["total"], 1);
    ASSERT_EQ(list["data"].size(), 1u);
    EXPECT_EQ(list["data"][0]["training_id"], id);
    EXPECT_EQ(list["data"][0]["model_id"], modelId);
    EXPECT_EQ(list["data"][0]["messege"], "model_ready");
    EXPECT_TRUE(list["data"][0].contains("created_at"));
    EXPECT_EQ(post("/api/v3/finetune_list", {{"key", other}}).json()["total"], 0);

    const auto deleted = post("/api/v3/finetune/delete/" + std::to_string(id), {{"key", key}});
    ASSERT_EQ(deleted.status, 200) << deleted.body;
    EXPECT_EQ(status(key, id)["messege"], "deleted");
    EXPECT_FALSE(modelIds(key).contains(modelId));
    EXPECT_FALSE(std::filesystem::exists(config.dataDir / "models" / modelId));
    EXPECT_EQ(text2img(key, {{"model_id", modelId}}).status, 400);
    // The free plan's training stays spent: deleting the model gives no training back.
    EXPECT_EQ(post("/api/v3/fine_tune", body(key)).status, 402);
}

TEST_F(TrainingApi, AnotherAccountsTrainingIsNotFound) {
    trainer.pauseAtStep(1);
    const auto r = post("/api/v3/fine_tune", body(key));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto id = std::to_string(r.json()["training_id"].get<std::int64_t>());
    for (const std::string route : {"/api/v3/fine_tune_status/", "/api/v3/cancel_training/", "/api/v3/cancle_training/",
                                    "/api/v3/finetune/delete/"}) {
        const auto answer = post(route + id, {{"key", other}});
        EXPECT_EQ(answer.status, 404) << route;
        EXPECT_EQ(answer.json()["status"], "error") << route;
    }
    EXPECT_EQ(post("/api/v3/fine_tune_status/nonsense", {{"key", key}}).status, 404);
    EXPECT_EQ(status(key, r.json()["training_id"])["messege"], "training_started");
}

TEST_F(TrainingApi, BadInputsAreRefusedWithAJSONMessageNamingThem) {
    auto refused = [&](const json& extra, const std::string& field, const std::string& words) {
        nextMinute();  // past the free plan's 10 generation requests a minute
        const auto r = post("/api/v3/fine_tune", body(key, extra));
        EXPECT_EQ(r.status, 400) << extra.dump() << ": " << r.body;
        const auto answer = r.json();
        EXPECT_EQ(answer["status"], "error");
        EXPECT_TRUE(answer["errors"].contains(field)) << r.body;
        EXPECT_NE(answer.value("messege", "").find(words), std::string::npos) << r.body;
    };
    refused({{"images", json::array()}}, "images", "must hold from 1 to 20 images");
    refused({{"images", nullptr}}, "images", "is required");
    refused(
        {{"images", json::array({dataUrl(noisePng(16)), "data:image/png;base64," + encodeBase64({'h', 'i', '!'})})}},
        "images", "image 2 is not a usable image");
    refused({{"images", json::array({hostUrl("/text")})}}, "images", "image 1 is not a usable image");
    refused({{"images", json::array({hostUrl("/missing")})}}, "images", "image 1 could not be fetched: HTTP 404");
    refused({{"base_model_id", "no-such-model"}}, "base_model_id", "'no-such-model' is not a model");
    refused({{"max_train_steps", "abc"}}, "max_train_steps", "must be a number");
    refused({{"max_train_steps", 5000}}, "max_train_steps", "from 1 to 2000");
    refused({{"instance_prompt", ""}}, "instance_prompt", "is required");
    refused({{"training_type", "dog"}}, "training_type", "men, women");
    refused({{"captions", {"only one"}}}, "captions", "one caption per image (2), not 1");
    refused({{"captions", {"a", 3}}}, "captions", "must be a list of strings");
    nextMinute();
    const auto lycoris = post("/api/v3/lora_fine_tune", body(key, {{"lora_type", "lycoris"}}));
    EXPECT_EQ(lycoris.status, 400);
    EXPECT_NE(lycoris.json().value("messege", "").find("not supported yet"), std::string::npos) << lycoris.body;
    EXPECT_EQ(trainer.calls(), 0);
    // Nothing was charged: the free plan's one training is still there.
    nextMinute();
    const auto ok = post("/api/v3/fine_tune", body(key));
    EXPECT_EQ(ok.status, 200) << ok.body;
    const auto second = post("/api/v3/fine_tune", body(key));
    EXPECT_EQ(second.status, 402) << second.body;
    EXPECT_EQ(second.json()["status"], "error");
}

TEST_F(TrainingApi, DeletingTheAccountStopsItsTrainingsAndDeletesTheirModels) {
    const auto account = get("/api/v1/account", {{"Authorization", "Bearer " + login("ada@example.com")}}).json();
    EXPECT_EQ(account["limits"]["training_quota"], 1);
    backend->accounts().setPlan("ada@example.com", "basic");  // two trainings: one trained, one running
    const auto done = post("/api/v3/fine_tune", body(key)).json();
    const std::string trained = done["model_id"];
    waitForStage(key, done["training_id"], "model_ready");
    trainer.pauseAtStep(1);
    const auto running = post("/api/v3/fine_tune", body(key)).json();
    ASSERT_TRUE(trainer.waitPaused());
    ASSERT_TRUE(
        std::filesystem::exists(config.dataDir / "training" / std::to_string(running["training_id"].get<int>())));

    const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + login("ada@example.com")}};
    std::thread resume([&] {
        // Once the purge has begun (the key no longer works), the paused training may go on: the purge
        // cancels it and waits until it has stopped.
        EXPECT_TRUE(eventually([&] { return post("/api/v3/finetune_list", {{"key", key}}).status == 401; }));
        trainer.resume();
    });
    const auto r = httpRequest(port, "DELETE", "/api/v1/account", json{{"password", "correct horse"}}.dump(), auth);
    resume.join();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_FALSE(std::filesystem::exists(config.dataDir / "models" / trained));
    EXPECT_FALSE(modelIds(other).contains(trained));
    EXPECT_TRUE(std::filesystem::is_empty(config.dataDir / "training"));
    for (const auto& m : generator.models()) EXPECT_EQ(m.ownerId, 0) << m.id;
}

}  // namespace
}  // namespace easel::testing
