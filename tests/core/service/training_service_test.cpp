// Fine-tuning for a caller over the fake trainer: the stages in order, the trained model registered as
// its owner's own, cancel (queued and running) and failure giving the training back, crash recovery
// resuming from the work folder's checkpoint, the plan's training quota, validation, delete and purge.

#include "service/training_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

#include "accounts/plans.h"
#include "eventually.h"
#include "fake_clock.h"
#include "fake_generator.h"
#include "fake_trainer.h"
#include "models/model_installer.h"
#include "noise_png.h"
#include "service_error_of.h"
#include "storage/model_install_repository.h"
#include "test_database.h"

namespace easel::service {
namespace {

using namespace std::chrono_literals;
using storage::JobStatus;
using testing::errorOf;
using Stages = std::vector<std::string>;

class TrainingServiceTest : public ::testing::Test {
protected:
    void SetUp() override {
        trainingRunner.setStageHook([this](const storage::JobRow& job, const std::string& stage) {
            std::lock_guard lock(mutex);
            stages[job.id].push_back(stage);
        });
        trainingRunner.start();
    }
    void TearDown() override {
        trainer.resume();
        trainingRunner.stop();
    }

    accounts::Caller caller(const std::string& email, const std::string& plan = "free") {
        return {testing::addUser(db, email, plan), email, accounts::findPlan(plan), false};
    }
    static TrainingSubmit request(int images = 3, int steps = 4) {
        TrainingSubmit r;
        r.instancePrompt = "a photo of sks dog";
        r.classPrompt = "a photo of a dog";
        for (int i = 0; i < images; ++i) r.images.push_back(testing::noisePng(16 + i));
        r.maxTrainSteps = steps;
        return r;
    }
    // One of several servers on this database: its own folders, the shared `bucket`, a 10 s lease
    // (on the fake clock) renewed at the trainer's cancel checks every `checkSeconds`, and its progress
    // saved at every step.
    jobs::TrainingRunnerOptions serverOptions(const std::string& server, storage::BlobStore& bucket,
                                              double checkSeconds) const {
        jobs::TrainingRunnerOptions o;
        o.trainingDir = database.dir() / server / "training";  // no shared folder
        o.modelsDir = database.dir() / server / "models";
        o.home = "host-" + server + ":/srv/easel";
        o.sharedBlobs = &bucket;
        o.leaseOwner = "lease-" + server;
        o.leaseSeconds = 10;
        o.cancelCheckSeconds = checkSeconds;
        o.progressSaveSeconds = 0;
        return o;
    }
    // Three servers on this database and one bucket, none started: an API server (no trainer; submits
    // go through viaApi), A (the fixture's generator and trainer) and B (its own). Their cancel checks
    // and lease renewals come every hour: a server "dies" by being paused in its trainer.
    struct Servers {
        explicit Servers(TrainingServiceTest& t)
            : bucket(t.database.dir() / "bucket"),
              api(t.db, apiModels, none, t.clock, t.serverOptions("api", bucket, 3600), oneAtATime),
              a(t.db, t.generator, t.trainer, t.clock, t.serverOptions("a", bucket, 3600), oneAtATime),
              b(t.db, modelsB, trainerB, t.clock, t.serverOptions("b", bucket, 3600), oneAtATime),
              viaApi(t.db, api, t.generator, t.generation, t.clock, {false}) {}
        static int oneAtATime(std::int64_t) { return 1; }

        storage::FileBlobStore bucket;
        jobs::UnavailableTrainer none;
        testing::FakeTrainer trainerB;
        testing::FakeGenerator apiModels, modelsB;
        jobs::TrainingRunner api, a, b;
        TrainingService viaApi;
    };
    Stages stagesOf(std::int64_t id) {
        std::lock_guard lock(mutex);
        return stages[id];
    }
    bool finished(std::int64_t id) { return trainingRunner.waitFinished(id, 10s); }
    JobStatus status(std::int64_t id) { return jobs.find(id)->status; }
    std::filesystem::path workDir(std::int64_t id) const { return database.dir() / "training" / std::to_string(id); }
    std::optional<jobs::ModelDescription> model(const std::string& id) const {
        for (const auto& m : generator.models()) {
            if (m.id == id) return m;
        }
        return std::nullopt;
    }

    testing::TestDatabase database;
    const storage::Database& db = database.db();
    storage::FileBlobStore blobs{database.dir() / "files"};
    FakeClock clock;
    testing::FakeGenerator generator;
    testing::FakeTrainer trainer;
    jobs::JobRunner runner{db, blobs, generator, clock, {}, [](std::int64_t) { return 1; }};
    GenerationService generation{db, blobs, runner, generator, clock};
    jobs::TrainingRunner trainingRunner{db,
                                        generator,
                                        trainer,
                                        clock,
                                        [&] {
                                            jobs::TrainingRunnerOptions o;
                                            o.trainingDir = database.dir() / "training";
                                            o.modelsDir = database.dir() / "models";
                                            o.saveCurveEvery = 2;
                                            return o;
                                        }(),
                                        [](std::int64_t) { return 1; }};
    TrainingService training{db, trainingRunner, generator, generation, clock};
    storage::JobRepository jobs{db};
    accounts::Caller ada = caller("ada@example.com");
    accounts::Caller bob = caller("bob@example.com", "basic");
    std::mutex mutex;
    std::map<std::int64_t, Stages> stages;
};

TEST_F(TrainingServiceTest, ATrainingGoesThroughTheStagesAndItsModelBecomesTheOwnersOwn) {
    const auto submitted = training.submit(ada, request(3, 4));
    const auto id = submitted.job.id;
    const auto modelId = submitted.request.modelId;
    EXPECT_EQ(modelId.rfind("ft-", 0), 0u);
    EXPECT_EQ(submitted.job.kind, "fine_tune");
    ASSERT_TRUE(finished(id));

    const auto view = training.status(ada, id);
    EXPECT_EQ(view.stage, "model_ready");
    EXPECT_EQ(view.step, 4);
    EXPECT_EQ(view.totalSteps, 4);
    ASSERT_EQ(view.lossCurve.size(), 4u);
    EXPECT_EQ(view.lossCurve.front(), (std::pair<int, double>{1, 1.0}));
    EXPECT_EQ(view.lossCurve.back(), (std::pair<int, double>{4, 0.25}));
    EXPECT_DOUBLE_EQ(view.loss.value_or(0), 0.25);
    EXPECT_EQ(stagesOf(id), (Stages{"training_started", "training_success", "trained_model_compressing",
                                    "deploying_model", "model_ready"}));

    // What the trainer got: the base model (the default one), the prompts, the images as sent.
    const auto params = trainer.lastParams();
    EXPECT_EQ(params.baseModelId, "fake-model");
    EXPECT_EQ(params.instancePrompt, "a photo of sks dog");
    EXPECT_EQ(params.classPrompt, "a photo of a dog");
    EXPECT_EQ(params.outputName, modelId);
    ASSERT_EQ(trainer.lastImages().size(), 3u);
    EXPECT_EQ(trainer.lastImages()[1].encoded, testing::noisePng(17));

    // Registered as Ada's own, in the models dir with the marker that brings it back after a restart.
    const auto registered = model(modelId);
    ASSERT_TRUE(registered);
    EXPECT_EQ(registered->ownerId, ada.userId);
    EXPECT_EQ(registered->category, "stable_diffusion");
    const auto dir = database.dir() / "models" / modelId;
    const auto marker = nlohmann::json::parse(std::ifstream(dir / "easel-model.json"));
    EXPECT_EQ(marker["model_category"], "stable_diffusion");
    EXPECT_EQ(marker["owner_id"], ada.userId);
    EXPECT_TRUE(std::filesystem::exists(dir / marker["file"].get<std::string>() / "model.safetensors"));
    EXPECT_FALSE(std::filesystem::exists(workDir(id))) << "the work folder goes when the training ends";
    const auto meta = nlohmann::json::parse(jobs.find(id)->meta);
    EXPECT_EQ(meta["loss_curve"].size(), 4u);
    EXPECT_EQ(meta["model_id"], modelId);

    // Bob does not see it; Ada does.
    const auto mine = generation.models(ada);
    EXPECT_TRUE(std::any_of(mine.begin(), mine.end(), [&](const auto& m) { return m.id == modelId; }));
    const auto his = generation.models(bob);
    EXPECT_FALSE(std::any_of(his.begin(), his.end(), [&](const auto& m) { return m.id == modelId; }));
}

TEST_F(TrainingServiceTest, ALoRATrainingBecomesTheOwnersLoRA) {
    auto r = request(2, 3);
    r.method = jobs::TrainingMethod::LoRA;
    const auto submitted = training.submit(bob, r);
    EXPECT_EQ(submitted.job.kind, "lora_fine_tune");
    ASSERT_TRUE(finished(submitted.job.id));
    EXPECT_EQ(training.status(bob, submitted.job.id).stage, "model_ready");
    const auto registered = model(submitted.request.modelId);
    ASSERT_TRUE(registered);
    EXPECT_EQ(registered->category, "lora");
    EXPECT_EQ(registered->ownerId, bob.userId);
    EXPECT_TRUE(std::filesystem::exists(database.dir() / "models" / submitted.request.modelId /
                                        (submitted.request.modelId + ".safetensors")));
}

TEST_F(TrainingServiceTest, ACancelledQueuedTrainingEndsAtOnceAndIsGivenBack) {
    trainer.pauseAtStep(1);
    const auto first = training.submit(bob, request()).job.id;
    ASSERT_TRUE(trainer.waitPaused());
    const auto second = training.submit(bob, request()).job.id;  // one worker: it waits
    EXPECT_EQ(training.status(bob, second).stage, "deploying_gpu");
    EXPECT_EQ(jobs.trainingsCharged(bob.userId), 2);
    ASSERT_TRUE(std::filesystem::exists(workDir(second) / "inputs" / "0"));

    training.cancel(bob, second);
    EXPECT_EQ(status(second), JobStatus::Cancelled);
    EXPECT_EQ(training.status(bob, second).stage, "cancelled");
    EXPECT_EQ(stagesOf(second), Stages{"cancelled"});
    EXPECT_FALSE(std::filesystem::exists(workDir(second)));
    EXPECT_EQ(jobs.trainingsCharged(bob.userId), 1);
    EXPECT_EQ(errorOf([&] { training.cancel(bob, second); }).code(), ErrorCode::Conflict);
    EXPECT_EQ(status(first), JobStatus::Running);
}

TEST_F(TrainingServiceTest, ACancelledRunningTrainingStopsAtItsNextStepAndIsGivenBack) {
    trainer.pauseAtStep(2);
    const auto submitted = training.submit(ada, request(3, 10));
    ASSERT_TRUE(trainer.waitPaused());
    const auto running = training.status(ada, submitted.job.id);
    EXPECT_EQ(running.stage, "training_started");
    EXPECT_EQ(running.trainerStage, "training");
    EXPECT_EQ(running.step, 2);
    EXPECT_EQ(running.lossCurve.size(), 2u);
    EXPECT_TRUE(running.etaSeconds) << "the pace is known after two steps";

    training.cancel(ada, submitted.job.id);
    trainer.resume();
    ASSERT_TRUE(finished(submitted.job.id));
    EXPECT_EQ(status(submitted.job.id), JobStatus::Cancelled);
    EXPECT_EQ(trainer.completed(), 0) << "it stopped at step 3 of 10";
    EXPECT_EQ(stagesOf(submitted.job.id), (Stages{"training_started", "cancelled"}));
    EXPECT_FALSE(model(submitted.request.modelId));
    EXPECT_FALSE(std::filesystem::exists(workDir(submitted.job.id)));
    EXPECT_EQ(jobs.trainingsCharged(ada.userId), 0);
    // The free plan's one training is Ada's again.
    const auto again = training.submit(ada, request());
    ASSERT_TRUE(finished(again.job.id));
    EXPECT_EQ(training.status(ada, again.job.id).stage, "model_ready");
}

// Several servers: a training runs on its home (where its inputs are); another server's start leaves it
// alone, and a cancel taken by another server reaches it.
TEST_F(TrainingServiceTest, ATrainingRunsOnItsHomeAndACancelTakenElsewhereStopsIt) {
    trainingRunner.stop();  // this test's two servers are below
    auto at = [&](const std::string& home) {
        jobs::TrainingRunnerOptions o;
        o.trainingDir = database.dir() / "training";  // one data dir, as two servers sharing it would
        o.modelsDir = database.dir() / "models";
        o.home = home;
        o.cancelCheckSeconds = 0;  // at every step
        return o;
    };
    jobs::TrainingRunner a{db, generator, trainer, clock, at("host-a:/srv/easel"), [](std::int64_t) { return 1; }};
    jobs::TrainingRunner b{db, generator, trainer, clock, at("host-b:/srv/easel"), [](std::int64_t) { return 1; }};
    TrainingService viaA{db, a, generator, generation, clock};
    TrainingService viaB{db, b, generator, generation, clock};
    b.start();
    trainer.pauseAtStep(2);
    const auto submitted = viaA.submit(ada, request(3, 10));
    EXPECT_EQ(jobs.find(submitted.job.id)->home, "host-a:/srv/easel");
    std::this_thread::sleep_for(700ms);  // B's worker looks at the queue (every 0.5 s) and leaves it
    EXPECT_EQ(status(submitted.job.id), JobStatus::Queued);
    a.start();
    ASSERT_TRUE(trainer.waitPaused());
    EXPECT_EQ(status(submitted.job.id), JobStatus::Running);
    b.stop();
    b.start();  // a restart of B re-queues only B's own trainings
    EXPECT_EQ(status(submitted.job.id), JobStatus::Running);
    EXPECT_EQ(jobs.find(submitted.job.id)->attempts, 1);

    viaB.cancel(ada, submitted.job.id);
    trainer.resume();
    ASSERT_TRUE(a.waitFinished(submitted.job.id, 10s));
    EXPECT_EQ(status(submitted.job.id), JobStatus::Cancelled);
    EXPECT_EQ(trainer.completed(), 0) << "it stopped at step 3 of 10";
    EXPECT_EQ(jobs.trainingsCharged(ada.userId), 0);
    a.stop();
    b.stop();
}

TEST_F(TrainingServiceTest, AFailedTrainingKeepsItsReasonAndCurveAndIsGivenBack) {
    trainer.failAtStep(3);
    const auto submitted = training.submit(ada, request(3, 6));
    ASSERT_TRUE(finished(submitted.job.id));
    const auto view = training.status(ada, submitted.job.id);
    EXPECT_EQ(view.stage, "failed");
    EXPECT_EQ(view.job.error, "the GPU ran out of memory");
    EXPECT_EQ(view.lossCurve.size(), 2u) << "the steps done before the failure";
    EXPECT_EQ(stagesOf(submitted.job.id).back(), "failed");
    EXPECT_EQ(jobs.trainingsCharged(ada.userId), 0);
    EXPECT_FALSE(model(submitted.request.modelId));
    trainer.failAtStep(0);
    EXPECT_NO_THROW(training.submit(ada, request()));
}

TEST_F(TrainingServiceTest, ATrainingACrashLeftRunningResumesFromItsCheckpoint) {
    trainingRunner.stop();  // the "old process": it queued the job and claimed it, then died at step 3
    const auto id = training.submit(ada, request(3, 6)).job.id;
    ASSERT_TRUE(jobs.claimNext(
        clock.nowSeconds(), [](std::int64_t) { return 1; }, storage::JobFamily::Training));
    std::filesystem::create_directories(workDir(id) / "work");
    std::ofstream(workDir(id) / "work" / "fake-checkpoint.json") << R"({"step":3})";
    jobs.setMeta(id, R"({"loss_curve":[[1,1.0],[2,0.5]],"step":2})");  // saved before the crash
    ASSERT_EQ(status(id), JobStatus::Running);

    trainingRunner.start();  // the "new process"
    ASSERT_TRUE(finished(id));
    EXPECT_EQ(trainer.resumedFrom(), std::vector<int>{3});
    const auto view = training.status(ada, id);
    EXPECT_EQ(view.stage, "model_ready");
    EXPECT_EQ(jobs.find(id)->attempts, 2);
    ASSERT_EQ(view.lossCurve.size(), 5u) << "the saved steps 1-2, then 4-6 of the resumed run";
    EXPECT_EQ(view.lossCurve[1].first, 2);
    EXPECT_EQ(view.lossCurve[2].first, 4);
    EXPECT_TRUE(model(view.request.modelId));
}

TEST_F(TrainingServiceTest, ATrainingThatStoppedTheServerEveryAttemptIsFailedAndGivenBack) {
    trainingRunner.stop();
    const auto id = training.submit(ada, request()).job.id;
    auto claim = [&] {
        return jobs.claimNext(
            clock.nowSeconds(), [](std::int64_t) { return 1; }, storage::JobFamily::Training);
    };
    for (int attempt = 1; attempt < 3; ++attempt) {  // two crashes, then the third attempt crashes too
        ASSERT_TRUE(claim());
        jobs.requeue(id);
    }
    ASSERT_EQ(claim()->attempts, 3);
    trainingRunner.start();
    EXPECT_EQ(status(id), JobStatus::Failed);
    EXPECT_NE(jobs.find(id)->error.find("stopped the server 3 times"), std::string::npos) << jobs.find(id)->error;
    EXPECT_EQ(stagesOf(id), Stages{"failed"});
    EXPECT_EQ(trainer.calls(), 0);
    EXPECT_EQ(jobs.trainingsCharged(ada.userId), 0);
    EXPECT_FALSE(std::filesystem::exists(workDir(id)));
}

TEST_F(TrainingServiceTest, ThePlansTrainingQuotaRefusesOneMore) {
    trainer.pauseAtStep(1);
    training.submit(ada, request());
    const auto e = errorOf([&] { training.submit(ada, request()); });
    EXPECT_EQ(e.code(), ErrorCode::PaymentRequired);
    EXPECT_NE(std::string(e.what()).find("free plan allows 1 fine-tune"), std::string::npos) << e.what();
    EXPECT_EQ(jobs.trainingsCharged(ada.userId), 1);
}

TEST_F(TrainingServiceTest, BadRequestsNameTheFieldAndStoreNothing) {
    auto noImages = request(0);
    EXPECT_TRUE(errorOf([&] { training.submit(ada, noImages); }).fieldErrors.contains("images"));

    auto notAnImage = request(3);
    notAnImage.images[1] = {'n', 'o', 'p', 'e'};
    const auto e = errorOf([&] { training.submit(ada, notAnImage); });
    ASSERT_TRUE(e.fieldErrors.contains("images"));
    EXPECT_EQ(e.fieldErrors.at("images").front().rfind("image 2 is not a usable image", 0), 0u)
        << e.fieldErrors.at("images").front();

    auto unknownBase = request();
    unknownBase.baseModelId = "no-such-model";
    EXPECT_TRUE(errorOf([&] { training.submit(ada, unknownBase); }).fieldErrors.contains("base_model_id"));

    auto blank = request();
    blank.instancePrompt = " ";
    blank.maxTrainSteps = 5000;
    const auto both = errorOf([&] { training.submit(ada, blank); });
    EXPECT_TRUE(both.fieldErrors.contains("instance_prompt"));
    EXPECT_TRUE(both.fieldErrors.contains("max_train_steps"));

    EXPECT_EQ(jobs.trainingsCharged(ada.userId), 0);
    EXPECT_TRUE(std::filesystem::is_empty(database.dir() / "training")) << "no staged inputs are left behind";
}

TEST_F(TrainingServiceTest, AnotherAccountsTrainingIsNotFound) {
    const auto id = training.submit(ada, request()).job.id;
    EXPECT_EQ(errorOf([&] { training.status(bob, id); }).code(), ErrorCode::NotFound);
    EXPECT_EQ(errorOf([&] { training.cancel(bob, id); }).code(), ErrorCode::NotFound);
    EXPECT_EQ(errorOf([&] { training.remove(bob, id); }).code(), ErrorCode::NotFound);
    EXPECT_TRUE(training.list(bob, 10, 0).empty());
    ASSERT_EQ(training.list(ada, 10, 0).size(), 1u);
}

TEST_F(TrainingServiceTest, DeletingATrainingRemovesItsModelAndKeepsItCounted) {
    const auto submitted = training.submit(ada, request());
    ASSERT_TRUE(finished(submitted.job.id));
    ASSERT_TRUE(model(submitted.request.modelId));
    training.remove(ada, submitted.job.id);
    EXPECT_FALSE(model(submitted.request.modelId));
    EXPECT_FALSE(std::filesystem::exists(database.dir() / "models" / submitted.request.modelId));
    EXPECT_EQ(training.status(ada, submitted.job.id).stage, "deleted");
    EXPECT_EQ(jobs.trainingsCharged(ada.userId), 1);
}

TEST_F(TrainingServiceTest, APurgeStopsTheAccountsTrainingsAndDeletesTheirModelsAndFolders) {
    const auto done = training.submit(bob, request());
    ASSERT_TRUE(finished(done.job.id));
    trainer.pauseAtStep(1);
    const auto running = training.submit(bob, request()).job.id;
    ASSERT_TRUE(trainer.waitPaused());
    const auto queued = training.submit(bob, request()).job.id;
    std::thread purge([&] { training.purge(bob.userId); });
    ASSERT_TRUE(testing::eventually([&] { return status(queued) == JobStatus::Cancelled; }));
    trainer.resume();
    purge.join();
    EXPECT_NE(status(running), JobStatus::Running);
    for (const auto& m : generator.models()) EXPECT_NE(m.ownerId, bob.userId) << m.id;
    EXPECT_TRUE(std::filesystem::is_empty(database.dir() / "models"));
    EXPECT_TRUE(std::filesystem::is_empty(database.dir() / "training"));
}

// Several servers, one without a trainer (role api): the training waits in the queue with its images in
// the shared blob store, the first server with a trainer takes it (it becomes that server's home), and
// the trained model is published through the blob store to a third server's installer, as its owner's.
TEST_F(TrainingServiceTest, AServerWithoutATrainerQueuesTheTrainingForOneWithAndTheModelReachesEveryServer) {
    trainingRunner.stop();  // this test's servers are below
    storage::FileBlobStore bucket{database.dir() / "bucket"};
    auto at = [&](const std::string& server) { return serverOptions(server, bucket, 1e9); };
    jobs::UnavailableTrainer none;
    testing::FakeGenerator apiModels, thirdModels;
    jobs::TrainingRunner api{db, apiModels, none, clock, at("api"), [](std::int64_t) { return 1; }};
    jobs::TrainingRunner worker{db, generator, trainer, clock, at("worker"), [](std::int64_t) { return 1; }};
    TrainingService viaApi{db, api, generator, generation, clock, {false}};
    const auto images = request(2, 4);
    const auto submitted = viaApi.submit(ada, images);
    const auto id = submitted.job.id;
    EXPECT_EQ(submitted.stage, "deploying_gpu");
    EXPECT_TRUE(jobs.find(id)->home.empty());
    EXPECT_EQ(bucket.count(ada.userId), 2u);
    EXPECT_FALSE(std::filesystem::exists(database.dir() / "api" / "training" / std::to_string(id)));

    trainer.pauseAtStep(2);
    worker.start();
    ASSERT_TRUE(trainer.waitPaused());
    EXPECT_EQ(jobs.find(id)->home, "host-worker:/srv/easel");
    const auto got = trainer.lastImages();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].encoded, images.images[0]);
    EXPECT_EQ(got[1].encoded, images.images[1]);
    // The server without the training shows the worker's progress, saved in the job's meta.
    const auto seen = viaApi.status(ada, id);
    EXPECT_EQ(seen.stage, "training_started");
    EXPECT_EQ(seen.trainerStage, "training");
    EXPECT_EQ(seen.step, 2);
    EXPECT_EQ(seen.total, 4);
    ASSERT_TRUE(seen.loss);
    EXPECT_DOUBLE_EQ(*seen.loss, 0.5);
    EXPECT_EQ(seen.lossCurve.size(), 2u);
    EXPECT_TRUE(seen.etaSeconds.has_value());
    trainer.resume();
    ASSERT_TRUE(worker.waitFinished(id, 10s));
    ASSERT_EQ(status(id), JobStatus::Succeeded);
    const auto modelId = submitted.request.modelId;
    // The inputs are gone from the bucket; the model's three files are there, its install recorded.
    EXPECT_EQ(bucket.count(ada.userId), 3u);
    const auto install = storage::ModelInstallRepository(db).find(modelId);
    ASSERT_TRUE(install);
    EXPECT_EQ(install->ownerId, ada.userId);
    EXPECT_EQ(jobs::publishedBlobs(install->source).size(), 3u) << install->source;
    EXPECT_TRUE(model(modelId));  // on the server that trained it

    models::ModelInstallOptions o;
    o.modelsDir = database.dir() / "third" / "models";
    o.sharedDb = &db;
    o.workerId = "third";
    o.blobs = &bucket;
    o.syncEvery = 50ms;
    {
        // The server that trained it has it already: it fetches nothing and reports it ready (an API
        // server's verify_model and its count of the account's loads in progress read that).
        auto home = o;
        home.modelsDir = database.dir() / "worker" / "models";
        home.workerId = "worker";
        models::ModelInstaller trainedHere(home, generator);
        ASSERT_TRUE(testing::eventually([&] {
            const auto states = storage::ModelInstallRepository(db).statesOf(modelId, install->version);
            return states.size() == 1 && states[0].workerId == "worker" && states[0].state == "ready";
        }));
        EXPECT_FALSE(std::filesystem::exists(home.modelsDir / (modelId + ".partial")));
    }
    {
        models::ModelInstaller third(o, thirdModels);
        ASSERT_TRUE(testing::eventually([&] {
            const auto all = thirdModels.models();
            return std::any_of(all.begin(), all.end(),
                               [&](const auto& m) { return m.id == modelId && m.ownerId == ada.userId; });
        })) << (third.status(modelId) ? third.status(modelId)->message : "no status");
        std::ifstream weights(o.modelsDir / modelId / "model" / "model.safetensors");
        EXPECT_EQ(std::string(std::istreambuf_iterator<char>(weights), {}), "fake weights");

        // The delete, taken by the server without a trainer, reaches the others and empties the bucket.
        viaApi.remove(ada, id);
        EXPECT_EQ(bucket.count(ada.userId), 0u);
        EXPECT_TRUE(storage::ModelInstallRepository(db).find(modelId)->removed);
        ASSERT_TRUE(testing::eventually([&] {
            const auto all = thirdModels.models();
            return std::none_of(all.begin(), all.end(), [&](const auto& m) { return m.id == modelId; });
        }));
        EXPECT_FALSE(std::filesystem::exists(o.modelsDir / modelId));
    }
    worker.stop();
}

// Several servers: the server running a training dies (its lease is no longer renewed). A training whose
// images are in the blob store is taken over by another server with a trainer, which starts it again and
// publishes the model; the presumed-dead one, should it wake up, changes nothing.
TEST_F(TrainingServiceTest, ATrainingOfAServerThatDiedIsTakenOverWhenItsImagesAreInTheBlobStore) {
    trainingRunner.stop();
    Servers servers(*this);
    auto& bucket = servers.bucket;
    auto& trainerB = servers.trainerB;
    auto& modelsB = servers.modelsB;
    auto& a = servers.a;
    auto& b = servers.b;
    auto& viaApi = servers.viaApi;
    trainer.pauseAtStep(2);
    a.start();
    const auto submitted = viaApi.submit(ada, request(2, 4));
    const auto id = submitted.job.id;
    ASSERT_TRUE(trainer.waitPaused());
    EXPECT_EQ(jobs.find(id)->home, "host-a:/srv/easel");

    // A stops renewing; B, started while the lease holds, leaves the training alone.
    b.start();
    clock.advance(5);
    std::this_thread::sleep_for(700ms);
    EXPECT_EQ(status(id), JobStatus::Running);
    EXPECT_EQ(trainerB.calls(), 0);
    clock.advance(6);  // the lease ran out: B takes it over and trains it from the start
    ASSERT_TRUE(testing::eventually([&] { return status(id) == JobStatus::Succeeded; }));
    const auto done = jobs.find(id);
    EXPECT_EQ(done->home, "host-b:/srv/easel");
    EXPECT_EQ(done->attempts, 2);
    EXPECT_EQ(trainerB.resumedFrom(), std::vector<int>{0});
    const auto modelId = submitted.request.modelId;
    const auto all = modelsB.models();
    EXPECT_TRUE(std::any_of(all.begin(), all.end(), [&](const auto& m) { return m.id == modelId; }));
    ASSERT_TRUE(testing::eventually([&] { return bucket.count(ada.userId) == 3; }));  // the inputs went

    // A wakes up: its run was taken over, so it installs nothing and leaves B's model and files alone.
    trainer.resume();
    ASSERT_TRUE(a.waitFinished(id, 10s));
    EXPECT_EQ(status(id), JobStatus::Succeeded);
    EXPECT_EQ(trainer.completed(), 1);  // it trained, then found the job was no longer its
    EXPECT_EQ(nlohmann::json::parse(jobs.find(id)->meta).value("model_id", ""), submitted.request.modelId)
        << "its progress writes overwrote B's result";
    EXPECT_FALSE(model(modelId));
    EXPECT_EQ(bucket.count(ada.userId), 3u);
    EXPECT_FALSE(storage::ModelInstallRepository(db).find(modelId)->removed);
    a.stop();
    b.stop();
}

// A training whose images are only in its server's data dir waits for that server, whatever its lease.
TEST_F(TrainingServiceTest, ATrainingWithItsImagesOnItsServerWaitsForThatServer) {
    trainingRunner.stop();
    Servers servers(*this);
    auto& trainerB = servers.trainerB;
    auto& a = servers.a;
    auto& b = servers.b;
    TrainingService viaA{db, a, generator, generation, clock};
    trainer.pauseAtStep(2);
    a.start();
    const auto id = viaA.submit(ada, request(2, 4)).job.id;
    ASSERT_TRUE(trainer.waitPaused());
    b.start();
    clock.advance(11);
    ASSERT_TRUE(testing::eventually([&] { return status(id) == JobStatus::Queued; }));  // back in the queue...
    std::this_thread::sleep_for(700ms);
    EXPECT_EQ(jobs.find(id)->home, "host-a:/srv/easel");  // ...for A alone
    EXPECT_EQ(status(id), JobStatus::Queued);
    EXPECT_EQ(trainerB.calls(), 0);
    // A was not dead after all: its run notices the job went back to the queue and leaves it (and its
    // work folder) alone; A takes it again and resumes from its checkpoint.
    trainer.resume();
    ASSERT_TRUE(testing::eventually([&] { return status(id) == JobStatus::Succeeded; }));
    EXPECT_EQ(jobs.find(id)->attempts, 2);
    EXPECT_EQ(trainer.resumedFrom(), (std::vector<int>{0, 4}));
    EXPECT_EQ(trainerB.calls(), 0);
    a.stop();
    b.stop();
}

// A server with a trainer that stops cleanly (a restart, a scale-down) puts its training back in the
// queue; one whose images are in the blob store may then go on on another server instead of waiting.
TEST_F(TrainingServiceTest, AStoppingServerLetsAnotherTakeATrainingWhoseImagesAreInTheBlobStore) {
    trainingRunner.stop();
    Servers servers(*this);
    auto& trainerB = servers.trainerB;
    auto& a = servers.a;
    auto& b = servers.b;
    auto& viaApi = servers.viaApi;
    trainer.pauseAtStep(2);
    a.start();
    const auto id = viaApi.submit(ada, request(2, 4)).job.id;
    ASSERT_TRUE(trainer.waitPaused());
    std::thread stopping([&] { a.stop(); });
    std::this_thread::sleep_for(200ms);  // the stop has asked the run to stop (it waits for it to)
    trainer.resume();                    // the run stops at its next step
    stopping.join();
    EXPECT_EQ(status(id), JobStatus::Queued);
    EXPECT_TRUE(jobs.find(id)->home.empty());
    b.start();
    ASSERT_TRUE(testing::eventually([&] { return status(id) == JobStatus::Succeeded; }));
    EXPECT_EQ(jobs.find(id)->home, "host-b:/srv/easel");
    EXPECT_EQ(trainerB.calls(), 1);
    b.stop();
}

// Alone, a server without a trainer would never run a training: 503, nothing stored.
TEST_F(TrainingServiceTest, AServerWithoutATrainerAndNoOtherServersRefusesTrainings) {
    TrainingService noTrainer{db, trainingRunner, generator, generation, clock, {false}};
    EXPECT_EQ(errorOf([&] { noTrainer.submit(ada, request()); }).code(), ErrorCode::Unavailable);
    EXPECT_EQ(jobs.countForUser(ada.userId, storage::JobFamily::Training), 0);
}

}  // namespace
}  // namespace easel::service
