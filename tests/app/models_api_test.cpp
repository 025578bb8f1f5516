// load_model / verify_model / delete_model / clear_queue, with a loopback file server laid out like
// the Hugging Face hub.

#include <fstream>

#include "backend_fixture.h"
#include "common/base64.h"
#include "eventually.h"
#include "noise_png.h"
#include "storage/job_repository.h"
#include "test_database.h"

namespace easel::testing {
namespace {

using nlohmann::json;

// Serves /api/models/{owner}/{name} and /{owner}/{name}/resolve/{rev}/{file}, honouring Range.
class FakeHub {
public:
    FakeHub() {
        router.add("GET", "/api/models/{owner}/{name}", [this](const server::Request& r) {
            const auto repo = r.pathParams.at("owner") + "/" + r.pathParams.at("name");
            if (!repos.contains(repo)) return server::Response::error(404, "Repository not found");
            json siblings = json::array();
            for (const auto& [file, bytes] : repos[repo]) siblings.push_back({{"rfilename", file}});
            return server::Response::json(200, {{"id", repo}, {"siblings", siblings}});
        });
        router.add("GET", "/{owner}/{name}/resolve/{rev}/{file}", [this](const server::Request& r) {
            const auto repo = r.pathParams.at("owner") + "/" + r.pathParams.at("name");
            {
                std::lock_guard lock(m_mutex);
                ranges.push_back(r.header("Range"));
            }
            if (!repos.contains(repo) || !repos[repo].contains(r.pathParams.at("file"))) {
                return server::Response::error(404, "Entry not found");
            }
            const auto& bytes = repos[repo][r.pathParams.at("file")];
            server::Response out;
            out.headers["Content-Type"] = "application/octet-stream";
            const auto range = r.header("Range");
            if (range.rfind("bytes=", 0) == 0) {
                const auto from = std::stoull(range.substr(6));
                out.status = 206;
                out.headers["Content-Range"] = "bytes " + std::to_string(from) + "-" +
                                               std::to_string(bytes.size() - 1) + "/" +
                                               std::to_string(lieAboutTotal ? bytes.size() + 10 : bytes.size());
                out.body = bytes.substr(from);
            } else {
                out.body = bytes;
            }
            return out;
        });
        server::HttpServerOptions o;
        o.port = 0;
        m_server = std::make_unique<server::HttpServer>(o, router);
        m_server->start();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_server->port()); }

    server::Router router;
    std::map<std::string, std::map<std::string, std::string>> repos;
    std::vector<std::string> ranges;
    bool lieAboutTotal = false;

private:
    std::mutex m_mutex;
    std::unique_ptr<server::HttpServer> m_server;
};

std::string fakeCheckpoint(std::size_t size) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 7919) % 251);
    return bytes;
}

class ModelsApi : public BackendTest {
protected:
    void SetUp() override {
        config.hubUrl = hub.url();
        config.allowPrivateDownloads = true;  // the fake hub is on loopback
        BackendTest::SetUp();
        admin = backend->accounts().createUser("root@example.com", "correct horse", "premium", true).apiKey;
    }
    // The last verify_model answer: once the install is ready or failed, or when the wait gave up.
    json waitReady(const std::string& id) {
        json last;
        eventually(
            [&] {
                last = post("/api/v1/enterprise/verify_model", {{"key", admin}, {"model_id", id}}).json();
                return last["model_status"] == "ready" || last["model_status"] == "failed";
            },
            std::chrono::seconds(10), std::chrono::milliseconds(25));
        return last;
    }
    std::string readFile(const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), {}};
    }

    FakeHub hub;
    std::string admin;
};

TEST_F(ModelsApi, LoadsFromAHubRepoIdAndServesIt) {
    const auto weights = fakeCheckpoint(300'000);
    hub.repos["someone/tiny-sd"] = {{"README.md", "hi"}, {"tiny-emaonly.safetensors", weights}};
    const auto r = post("/api/v1/enterprise/load_model", {{"key", admin}, {"model_id", "someone/tiny-sd"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["status"], "processing");
    EXPECT_EQ(r.json()["model_id"], "tiny-sd");
    const auto done = waitReady("tiny-sd");
    ASSERT_EQ(done["model_status"], "ready") << done.dump();
    EXPECT_EQ(readFile(config.dataDir / "models" / "tiny-sd" / "model.safetensors"), weights);
    const std::string user = signup("a@example.com")["api_key"];
    const auto models = get("/api/v1/models", {{"X-API-Key", user}}).json()["models"];
    ASSERT_EQ(models.size(), 2u);
    EXPECT_EQ(models[1]["model_id"], "tiny-sd");
    const auto gen = text2img(user, {{"model_id", "tiny-sd"}});
    EXPECT_EQ(gen.json()["status"], "success") << gen.body;
    // Not an admin: 403.
    EXPECT_EQ(post("/api/v1/enterprise/load_model", {{"key", user}, {"model_id", "someone/tiny-sd"}}).status, 403);
}

TEST_F(ModelsApi, ResumesAnInterruptedDownload) {
    const auto weights = fakeCheckpoint(200'000);
    hub.repos["someone/big"] = {{"model.safetensors", weights}};
    std::filesystem::create_directories(config.dataDir / "models" / "big.partial");
    std::ofstream(config.dataDir / "models" / "big.partial" / "model.safetensors", std::ios::binary)
        << weights.substr(0, 120'000);
    post("/api/v1/enterprise/load_model", {{"key", admin}, {"hf_id", "someone/big"}});
    ASSERT_EQ(waitReady("big")["model_status"], "ready");
    EXPECT_EQ(readFile(config.dataDir / "models" / "big" / "model.safetensors"), weights);
    EXPECT_EQ(hub.ranges.back(), "bytes=120000-");
}

TEST_F(ModelsApi, ChecksSizeRefusesPicklesAndReportsFailures) {
    hub.repos["someone/liar"] = {{"model.safetensors", fakeCheckpoint(50'000)}};
    hub.lieAboutTotal = true;
    std::filesystem::create_directories(config.dataDir / "models" / "liar.partial");
    std::ofstream(config.dataDir / "models" / "liar.partial" / "model.safetensors", std::ios::binary)
        << fakeCheckpoint(50'000).substr(0, 1000);
    post("/api/v1/enterprise/load_model", {{"key", admin}, {"hf_id", "someone/liar"}});
    const auto failed = waitReady("liar");
    EXPECT_EQ(failed["model_status"], "failed");
    EXPECT_NE(failed["message"].get<std::string>().find("50010"), std::string::npos) << failed.dump();

    auto r =
        post("/api/v1/enterprise/load_model", {{"key", admin}, {"url", hub.url() + "/x/y/resolve/main/evil.ckpt"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.json()["message"].get<std::string>().find("pickle"), std::string::npos);
    EXPECT_EQ(post("/api/v1/enterprise/load_model", {{"key", admin}}).status, 400);
    EXPECT_EQ(post("/api/v1/enterprise/load_model", {{"key", admin}, {"hf_id", "../etc"}}).status, 400);

    post("/api/v1/enterprise/load_model", {{"key", admin}, {"hf_id", "nobody/nothing"}});
    const auto missing = waitReady("nothing");
    EXPECT_EQ(missing["model_status"], "failed");
    EXPECT_NE(missing["message"].get<std::string>().find("no public repository"), std::string::npos);
    EXPECT_EQ(post("/api/v1/enterprise/verify_model", {{"key", admin}, {"model_id", "never-heard"}}).status, 404);
}

TEST_F(ModelsApi, LoadsFromAUrlAndDeletes) {
    hub.repos["a/b"] = {{"weights.safetensors", fakeCheckpoint(10'000)}};
    const auto r = post("/api/v1/enterprise/load_model",
                        {{"key", admin}, {"url", hub.url() + "/a/b/resolve/main/weights.safetensors"}});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(waitReady("weights")["model_status"], "ready");
    EXPECT_EQ(post("/api/v1/enterprise/delete_model", {{"key", admin}, {"model_id", "weights"}}).status, 200);
    EXPECT_FALSE(std::filesystem::exists(config.dataDir / "models" / "weights"));
    EXPECT_EQ(post("/api/v1/enterprise/delete_model", {{"key", admin}, {"model_id", "weights"}}).status, 404);
}

TEST_F(ModelsApi, PrivateAddressesAreRefusedUnlessAllowed) {
    stop();
    config.allowPrivateDownloads = false;
    start();
    hub.repos["a/b"] = {{"model.safetensors", fakeCheckpoint(1000)}};
    post("/api/v1/enterprise/load_model", {{"key", admin}, {"hf_id", "a/b"}});
    const auto r = waitReady("b");
    EXPECT_EQ(r["model_status"], "failed");
    EXPECT_NE(r["message"].get<std::string>().find("private"), std::string::npos);
}

TEST_F(ModelsApi, ClearQueueCancelsAndRefunds) {
    const std::string user = signup("a@example.com")["api_key"];
    backend->accounts().setPlan("a@example.com", "premium");
    generator.block();
    text2img(user, {{"instant_response", true}, {"prompt", "running"}});
    ASSERT_TRUE(generator.waitStarted(1));
    text2img(user, {{"instant_response", true}, {"samples", 2}});
    text2img(user, {{"instant_response", true}, {"samples", 3}});
    const auto r = post("/api/v1/enterprise/clear_queue", {{"key", admin}});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.json()["cancelled"], 2);
    const auto caller = backend->accounts().authenticateKey(user);
    EXPECT_EQ(backend->accounts().account(caller.userId).imagesUsed, 1);  // only the running one stays charged
    const auto details = post("/api/v1/enterprise/system_details", {{"key", admin}}).json();
    EXPECT_EQ(details["queue_length"], 0);
    EXPECT_EQ(details["running_jobs"], 1);
}

}  // namespace
}  // namespace easel::testing

namespace easel::testing {
namespace {

// LoRAs and embeddings as models: loaded through load_model with a model_category, listed with it,
// named in requests (lora_model / lora_strength / <lora:...> tags / embeddings_model) and checked
// before anything is charged.
class AdaptersApi : public ModelsApi {
protected:
    void SetUp() override {
        ModelsApi::SetUp();
        user = signup("a@example.com")["api_key"];
        userId = backend->accounts().authenticateKey(user).userId;
    }
    void load(const std::string& id, const std::string& category, const std::string& fileName = "adapter") {
        const auto file = dir.path() / (fileName + ".safetensors");
        std::ofstream(file, std::ios::binary) << fakeCheckpoint(1000);
        const auto r = post("/api/v1/enterprise/load_model",
                            {{"key", admin}, {"model_id", id}, {"path", file.string()}, {"model_category", category}});
        ASSERT_EQ(r.status, 200) << r.body;
        ASSERT_EQ(waitReady(id)["model_status"], "ready");
    }
    std::int64_t used() { return testing::imagesUsed(backend->db(), userId); }

    std::string user;
    std::int64_t userId = 0;
};

TEST_F(AdaptersApi, LorasAndEmbeddingsAreListedWithTheirCategory) {
    load("ink", "lora");
    load("tinyastro", "embeddings");
    const auto all = get("/api/v1/models", {{"X-API-Key", user}}).json()["models"];
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0]["model_category"], "stable_diffusion");
    EXPECT_EQ(all[1]["model_id"], "ink");
    EXPECT_EQ(all[1]["model_category"], "lora");
    EXPECT_EQ(all[2]["model_category"], "embeddings");
    const auto loras = get("/api/v1/models?category=lora", {{"X-API-Key", user}}).json()["models"];
    ASSERT_EQ(loras.size(), 1u);
    EXPECT_EQ(loras[0]["model_id"], "ink");
    // An unsupported category is refused up front.
    const auto r = post(
        "/api/v1/enterprise/load_model",
        {{"key", admin}, {"model_id", "cn"}, {"url", "https://x/cn.safetensors"}, {"model_category", "controlnet"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(r.json()["errors"].contains("model_category")) << r.body;
}

TEST_F(AdaptersApi, ARequestCarriesItsLorasStrengthsAndEmbeddings) {
    load("ink", "lora");
    load("grain", "lora");
    load("tinyastro", "embeddings");
    auto r = text2img(user, {{"lora_model", "ink, grain"},
                             {"lora_strength", "0.5,0.8"},
                             {"embeddings_model", "tinyastro"},
                             {"prompt", "a tinyastro castle <lora:ink:0.3>"}});
    // "ink" twice (parameter and tag) is refused: which strength would win is not obvious.
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("names 'ink' twice"), std::string::npos) << r.body;
    r = text2img(user, {{"lora_model", "grain"},
                        {"lora_strength", 0.8},
                        {"embeddings_model", "tinyastro"},
                        {"prompt", "a tinyastro castle, <lora:ink:0.3:0.6>"}});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto p = generator.lastParams();
    EXPECT_EQ(p.prompt, "a tinyastro castle");  // the tag is not a word for the text encoder
    ASSERT_EQ(p.loras.size(), 2u);
    EXPECT_EQ(p.loras[0].id, "grain");
    EXPECT_DOUBLE_EQ(p.loras[0].unetStrength, 0.8);
    EXPECT_EQ(p.loras[1].id, "ink");
    EXPECT_DOUBLE_EQ(p.loras[1].textEncoderStrength, 0.3);
    EXPECT_DOUBLE_EQ(p.loras[1].unetStrength, 0.6);
    EXPECT_EQ(p.embeddings, std::vector<std::string>{"tinyastro"});
}

TEST_F(AdaptersApi, UnknownOrMismatchedAdaptersAre400AndChargeNothing) {
    load("ink", "lora");
    load("xl-style", "lora", "style-sdxl");  // made for SDXL; the fake model is SD 1.x
    load("tinyastro", "embeddings");
    const auto refused = [&](const json& extra, const std::string& field, const std::string& text) {
        const auto r = text2img(user, extra);
        EXPECT_EQ(r.status, 400) << extra.dump() << ": " << r.body;
        const auto errors = r.json()["errors"];
        ASSERT_TRUE(errors.contains(field)) << r.body;
        EXPECT_NE(errors[field].dump().find(text), std::string::npos) << r.body;
    };
    refused({{"lora_model", "nope"}}, "lora_model", "'nope' is not a LoRA on this server");
    refused({{"lora_model", "tinyastro"}}, "lora_model", "'tinyastro' is not a LoRA");
    refused({{"prompt", "a cat <lora:missing:1>"}}, "lora_model", "'missing' is not a LoRA");
    refused({{"prompt", "a cat <lora:ink:strong>"}}, "prompt", "'strong' is not a number");
    refused({{"lora_model", "xl-style"}}, "lora_model", "is a LoRA for sdxl");
    refused({{"lora_model", "ink"}, {"lora_strength", "0.5,0.5"}}, "lora_strength", "one per LoRA");
    refused({{"lora_model", "ink"}, {"lora_strength", 9}}, "lora_strength", "from -4 to 4");
    refused({{"embeddings_model", "ink"}}, "embeddings_model", "'ink' is not an embedding");
    refused({{"model_id", "ink"}}, "model_id", "is a LoRA");
    EXPECT_EQ(used(), 0);
    EXPECT_EQ(generator.completed(), 0);
}

TEST_F(AdaptersApi, ALoraLoadsFromAHubRepoIntoItsOwnFolder) {
    hub.repos["someone/ink-lora"] = {{"pytorch_lora_weights.safetensors", fakeCheckpoint(500)}, {"README.md", "x"}};
    ASSERT_EQ(post("/api/v1/enterprise/load_model",
                   {{"key", admin}, {"hf_id", "someone/ink-lora"}, {"model_id", "ink"}, {"model_category", "lora"}})
                  .status,
              200);
    ASSERT_EQ(waitReady("ink")["model_status"], "ready");
    EXPECT_EQ(readFile(config.dataDir / "models" / "ink" / "ink.safetensors"), fakeCheckpoint(500));
    // What tells the registry after a restart that the folder holds a LoRA.
    const auto marker = json::parse(readFile(config.dataDir / "models" / "ink" / "easel-model.json"));
    EXPECT_EQ(marker["model_category"], "lora");
    EXPECT_EQ(marker["file"], "ink.safetensors");
    const auto loras = get("/api/v1/models?category=lora", {{"X-API-Key", user}}).json()["models"];
    ASSERT_EQ(loras.size(), 1u);
    EXPECT_EQ(loras[0]["model_id"], "ink");
    EXPECT_EQ(text2img(user, {{"lora_model", "ink"}}).status, 200);
}

// An account's own LoRAs and embeddings (/api/v1/models/load, verify, delete): private to it, under an id
// no other model has, counted against its plan's storage, and gone with the account.
class OwnAdapters : public AdaptersApi {
protected:
    void SetUp() override {
        AdaptersApi::SetUp();
        hub.repos["someone/ink-lora"] = {{"pytorch_lora_weights.safetensors", fakeCheckpoint(500)}};
        other = signup("b@example.com")["api_key"];
    }
    HttpResult loadOwn(const std::string& key, json body) {
        body["key"] = key;
        return post("/api/v1/models/load", body);
    }
    json waitOwn(const std::string& key, const std::string& id) {
        json last;
        eventually(
            [&] {
                last = post("/api/v1/models/verify", {{"key", key}, {"model_id", id}}).json();
                return last["model_status"] == "ready" || last["model_status"] == "failed";
            },
            std::chrono::seconds(10), std::chrono::milliseconds(25));
        return last;
    }
    json loras(const std::string& key) {
        return get("/api/v1/models?category=lora", {{"X-API-Key", key}}).json()["models"];
    }

    std::string other;
};

TEST_F(OwnAdapters, AnAccountsOwnLoraIsSeenAndUsedByItAlone) {
    const auto r = loadOwn(user, {{"hf_id", "someone/ink-lora"}, {"model_id", "ink"}});  // lora by default
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(waitOwn(user, "ink")["model_status"], "ready");
    const auto mine = loras(user);
    ASSERT_EQ(mine.size(), 1u);
    EXPECT_EQ(mine[0]["model_id"], "ink");
    EXPECT_EQ(mine[0]["private"], true);
    EXPECT_EQ(mine[0]["own"], true);
    EXPECT_EQ(mine[0]["size_bytes"], 500);
    const auto marker = json::parse(readFile(config.dataDir / "models" / "ink" / "easel-model.json"));
    EXPECT_EQ(marker["owner_id"], userId);  // kept across restarts

    ASSERT_EQ(text2img(user, {{"lora_model", "ink"}, {"lora_strength", 0.7}}).status, 200);
    ASSERT_EQ(generator.lastParams().loras.size(), 1u);
    EXPECT_EQ(generator.lastParams().loras[0].id, "ink");

    // Another account does not see it, cannot use it, check it or delete it.
    EXPECT_TRUE(loras(other).empty());
    const auto refused = text2img(other, {{"prompt", "a cat <lora:ink:1>"}});
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_NE(refused.body.find("'ink' is not a LoRA on this server"), std::string::npos) << refused.body;
    EXPECT_EQ(post("/api/v1/models/verify", {{"key", other}, {"model_id", "ink"}}).status, 404);
    EXPECT_EQ(post("/api/v1/models/delete", {{"key", other}, {"model_id", "ink"}}).status, 404);
    EXPECT_EQ(generator.completed(), 1);

    // The owner deletes it: gone from the list and the disk.
    ASSERT_EQ(post("/api/v1/models/delete", {{"key", user}, {"model_id", "ink"}}).status, 200);
    EXPECT_TRUE(loras(user).empty());
    EXPECT_FALSE(std::filesystem::exists(config.dataDir / "models" / "ink"));
}

TEST_F(OwnAdapters, AnAccountLoadsNeitherCheckpointsNorPathsNorAnotherModelsId) {
    const auto file = dir.path() / "x.safetensors";
    std::ofstream(file, std::ios::binary) << fakeCheckpoint(100);
    auto r = loadOwn(user, {{"hf_id", "someone/ink-lora"}, {"model_category", "stable_diffusion"}});
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_NE(r.body.find("only an admin loads Stable Diffusion checkpoints"), std::string::npos) << r.body;
    r = loadOwn(user, {{"path", file.string()}, {"model_id", "x"}});
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_NE(r.body.find("only an admin loads models from a path"), std::string::npos) << r.body;

    load("shared-ink", "lora");  // the admin's, for everyone
    const auto defaultId = get("/api/v1/models", {{"X-API-Key", user}}).json()["models"][0]["model_id"];
    ASSERT_EQ(loadOwn(other, {{"hf_id", "someone/ink-lora"}, {"model_id", "theirs"}}).status, 200);
    ASSERT_EQ(waitOwn(other, "theirs")["model_status"], "ready");
    for (const std::string& taken : {std::string("shared-ink"), defaultId.get<std::string>(), std::string("theirs")}) {
        r = loadOwn(user, {{"hf_id", "someone/ink-lora"}, {"model_id", taken}});
        EXPECT_EQ(r.status, 409) << taken << ": " << r.body;
        EXPECT_NE(r.body.find("is taken"), std::string::npos) << r.body;
    }
    // Nothing was replaced: the other account's LoRA and the shared one are still there and theirs.
    EXPECT_EQ(loras(other).size(), 2u);
    EXPECT_EQ(readFile(config.dataDir / "models" / "theirs" / "theirs.safetensors"), fakeCheckpoint(500));
}

TEST_F(OwnAdapters, OwnAdaptersCountAgainstThePlansStorage) {
    // The free plan keeps 100 MB: leave 400 bytes, less than the 500-byte LoRA.
    storage::JobRepository(backend->db())
        .insertUpload(userId, "upload-earlier", clock.nowSeconds(), clock.nowSeconds() + 3600, (100ll << 20) - 400);
    ASSERT_EQ(loadOwn(user, {{"hf_id", "someone/ink-lora"}, {"model_id", "ink"}}).status, 200);
    const auto failed = waitOwn(user, "ink");
    EXPECT_EQ(failed["model_status"], "failed") << failed.dump();
    EXPECT_NE(failed["message"].get<std::string>().find("larger than 400 bytes"), std::string::npos) << failed.dump();
    EXPECT_FALSE(std::filesystem::exists(config.dataDir / "models" / "ink.partial"));
    EXPECT_FALSE(std::filesystem::exists(config.dataDir / "models" / "ink"));

    // With room, it loads; then its 500 bytes count: an upload of more than what is left is a 507.
    clock.advance(2 * 3600);
    nextMinute();
    storage::JobRepository(backend->db())
        .insertUpload(userId, "upload-later", clock.nowSeconds(), clock.nowSeconds() + 3600, (100ll << 20) - 600);
    ASSERT_EQ(loadOwn(user, {{"hf_id", "someone/ink-lora"}, {"model_id", "ink"}}).status, 200);
    ASSERT_EQ(waitOwn(user, "ink")["model_status"], "ready");
    ASSERT_EQ(loadOwn(user, {{"hf_id", "someone/ink-lora"}, {"model_id", "ink2"}}).status, 200);
    const auto second = waitOwn(user, "ink2");
    EXPECT_EQ(second["model_status"], "failed") << second.dump();
    EXPECT_NE(second["message"].get<std::string>().find("larger than 100 bytes"), std::string::npos) << second.dump();
    const auto full = post("/api/v6/base64_to_url", {{"key", user}, {"base64_string", encodeBase64(noisePng(64))}});
    EXPECT_EQ(full.status, 507) << full.body;
    EXPECT_NE(full.body.find("LoRAs and embeddings"), std::string::npos) << full.body;
}

TEST_F(OwnAdapters, DeletingTheAccountDeletesItsAdapters) {
    ASSERT_EQ(loadOwn(user, {{"hf_id", "someone/ink-lora"}, {"model_id", "ink"}}).status, 200);
    ASSERT_EQ(waitOwn(user, "ink")["model_status"], "ready");
    load("shared-ink", "lora");
    backend->accounts().deleteAccount(userId, "correct horse");
    EXPECT_FALSE(std::filesystem::exists(config.dataDir / "models" / "ink"));
    const auto left = loras(other);
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0]["model_id"], "shared-ink");
}

// Several servers on one database, at the installer: each server with its own models dir (or two
// sharing one), syncing every 50 ms.
class SharedModelInstalls : public ::testing::Test {
protected:
    models::ModelInstallOptions options(const std::string& server, bool installsHere, const std::string& dir = {}) {
        models::ModelInstallOptions o;
        o.modelsDir = dirs / (dir.empty() ? server : dir);
        o.hubUrl = hub.url();
        o.policy.allowPrivateAddresses = true;  // the fake hub is on loopback
        o.sharedDb = &database.db();
        o.workerId = server;
        o.installsHere = installsHere;
        o.syncEvery = std::chrono::milliseconds(50);
        return o;
    }
    static bool has(const FakeGenerator& g, const std::string& id) {
        const auto all = g.models();
        return std::any_of(all.begin(), all.end(), [&](const auto& m) { return m.id == id; });
    }
    static std::string read(const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), {}};
    }
    std::optional<models::InstallStatus> settled(models::ModelInstaller& installer, const std::string& id) {
        std::optional<models::InstallStatus> st;
        eventually([&] {
            st = installer.status(id);
            return st && (st->state == "ready" || st->state == "failed");
        });
        return st;
    }

    FakeHub hub;
    TestDatabase database;
    TempDir dirs;
    FakeGenerator apiModels, firstModels, secondModels;
};

TEST_F(SharedModelInstalls, ALoadTakenByTheApiServerIsInstalledByEveryWorkerAndADeleteRemovesEveryCopy) {
    const auto weights = fakeCheckpoint(150'000);
    hub.repos["someone/shared-sd"] = {{"model.safetensors", weights}};
    models::ModelInstaller api(options("api", false), apiModels);
    models::ModelInstaller first(options("worker-1", true), firstModels);
    models::ModelInstaller second(options("worker-2", true), secondModels);
    models::ModelSource source;
    source.hfRepo = "someone/shared-sd";
    const auto started = api.start(source);
    EXPECT_EQ(started.modelId, "shared-sd");
    EXPECT_EQ(started.state, "downloading");
    ASSERT_TRUE(eventually([&] { return has(firstModels, "shared-sd") && has(secondModels, "shared-sd"); }));
    EXPECT_FALSE(has(apiModels, "shared-sd"));  // the API server loads nothing
    EXPECT_EQ(read(dirs / "worker-1" / "shared-sd" / "model.safetensors"), weights);
    EXPECT_EQ(read(dirs / "worker-2" / "shared-sd" / "model.safetensors"), weights);
    EXPECT_FALSE(std::filesystem::exists(dirs / "api" / "shared-sd"));
    const auto ready = settled(api, "shared-sd");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->state, "ready") << ready->message;
    EXPECT_EQ(hub.ranges.size(), 2u);  // one download per worker

    // A load again (the hub has new weights) installs the new version everywhere.
    hub.repos["someone/shared-sd"]["model.safetensors"] = fakeCheckpoint(160'000);
    api.start(source);
    ASSERT_TRUE(
        eventually([&] { return read(dirs / "worker-2" / "shared-sd" / "model.safetensors").size() == 160'000; }));
    ASSERT_TRUE(
        eventually([&] { return read(dirs / "worker-1" / "shared-sd" / "model.safetensors").size() == 160'000; }));

    // The delete, taken by the API server, reaches every worker: model and files gone.
    EXPECT_TRUE(api.remove("shared-sd"));
    ASSERT_TRUE(eventually([&] { return !has(firstModels, "shared-sd") && !has(secondModels, "shared-sd"); }));
    EXPECT_TRUE(eventually([&] {
        return !std::filesystem::exists(dirs / "worker-1" / "shared-sd") &&
               !std::filesystem::exists(dirs / "worker-2" / "shared-sd");
    }));
    EXPECT_FALSE(api.status("shared-sd"));
    EXPECT_FALSE(api.remove("shared-sd"));  // nothing left to delete

    // A load the workers cannot do is reported as failed, with their reason.
    source.hfRepo = "nobody/nothing";
    api.start(source);
    const auto failed = settled(api, "nothing");
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->state, "failed");
    EXPECT_NE(failed->message.find("no public repository"), std::string::npos) << failed->message;
}

TEST_F(SharedModelInstalls, TwoServersSharingAModelsDirDownloadOnceAndBothLoadIt) {
    hub.repos["someone/one-copy"] = {{"model.safetensors", fakeCheckpoint(400'000)}};
    models::ModelInstaller first(options("worker-1", true, "shared"), firstModels);
    models::ModelInstaller second(options("worker-2", true, "shared"), secondModels);
    models::ModelSource source;
    source.hfRepo = "someone/one-copy";
    first.start(source);  // taken by a worker itself (role "all")
    ASSERT_TRUE(eventually([&] { return has(firstModels, "one-copy") && has(secondModels, "one-copy"); }))
        << first.status("one-copy")->state << ": " << first.status("one-copy")->message << "; "
        << (second.status("one-copy") ? second.status("one-copy")->state + ": " + second.status("one-copy")->message
                                      : "no status");
    EXPECT_EQ(hub.ranges.size(), 1u);  // the second found the version it was asked for already there
    EXPECT_EQ(read(dirs / "shared" / "one-copy" / "model.safetensors"), fakeCheckpoint(400'000));
}

// An account loads at most two of its own models at once, counted across servers: an API server installs
// nothing itself, so the loads it recorded count until some worker has finished them.
TEST_F(SharedModelInstalls, TheTwoLoadsAtOnceCapHoldsOnAnApiServerUntilAWorkerFinishesThem) {
    for (const auto* name : {"one", "two", "three"})
        hub.repos[std::string("someone/") + name] = {{"pytorch_lora_weights.safetensors", fakeCheckpoint(5'000)}};
    models::ModelInstaller api(options("api", false), apiModels);
    auto load = [&](const std::string& name) {
        models::ModelSource source;
        source.hfRepo = "someone/" + name;
        source.category = "lora";
        source.ownerId = 42;
        return api.start(source);
    };
    load("one");
    load("two");  // no worker is up: both wait
    try {
        load("three");
        FAIL() << "a third load at once was accepted";
    } catch (const ServiceError& e) {
        EXPECT_EQ(e.code(), ErrorCode::TooManyRequests) << e.what();
        EXPECT_NE(std::string(e.what()).find("already loading 2"), std::string::npos) << e.what();
    }
    models::ModelInstaller worker(options("worker-1", true), firstModels);
    ASSERT_TRUE(eventually([&] {
        const auto one = api.status("one"), two = api.status("two");
        return one && two && one->state == "ready" && two->state == "ready";
    }));
    EXPECT_EQ(load("three").state, "downloading");  // the worker finished the first two
    ASSERT_TRUE(eventually([&] { return has(firstModels, "three"); }));
}

TEST_F(SharedModelInstalls, AnAccountsPurgeRemovesItsOwnLoRAsOnEveryServer) {
    hub.repos["someone/my-style"] = {{"pytorch_lora_weights.safetensors", fakeCheckpoint(10'000)}};
    models::ModelInstaller api(options("api", false), apiModels);
    models::ModelInstaller worker(options("worker-1", true), firstModels);
    models::ModelSource source;
    source.hfRepo = "someone/my-style";
    source.category = "lora";
    source.ownerId = 42;
    api.start(source);
    ASSERT_TRUE(eventually([&] { return has(firstModels, "my-style"); }));
    EXPECT_EQ(firstModels.models().back().ownerId, 42);  // still the account's own there
    api.removeOwnedBy(42);
    ASSERT_TRUE(eventually([&] { return !has(firstModels, "my-style"); }));
}

}  // namespace
}  // namespace easel::testing
