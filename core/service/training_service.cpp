#include "service/training_service.h"

#include <algorithm>
#include <cctype>
#include <iostream>
#include <limits>

#include "common/random_token.h"
#include "common/request_limits.h"
#include "storage/user_repository.h"

namespace easel::service {
namespace {

using Errors = std::map<std::string, std::vector<std::string>>;
using storage::JobStatus;

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

bool active(const storage::JobRow& job) { return job.status == JobStatus::Queued || job.status == JobStatus::Running; }

nlohmann::json metaOf(const storage::JobRow& job) {
    auto meta = job.meta.empty() ? nlohmann::json::object() : nlohmann::json::parse(job.meta, nullptr, false);
    return meta.is_object() ? meta : nlohmann::json::object();
}

}  // namespace

TrainingService::TrainingService(const storage::Database& db, jobs::TrainingRunner& runner,
                                 jobs::ImageGenerator& generator, GenerationService& generation, const Clock& clock,
                                 TrainingOptions options)
    : m_db(db),
      m_runner(runner),
      m_generator(generator),
      m_generation(generation),
      m_clock(clock),
      m_options(options),
      m_jobs(db) {}

jobs::ModelDescription TrainingService::baseModel(const accounts::Caller& caller, const std::string& id) const {
    if (id.empty()) {
        auto model = m_generator.defaultModel();
        if (!model) throw ServiceError(ErrorCode::BadRequest, "is required: this server has no default model");
        return *model;
    }
    // Another account's own model is as unknown as a missing one.
    for (const auto& m : m_generation.models(caller)) {
        if (m.id != id) continue;
        if (m.category != "stable_diffusion") {
            throw ServiceError(ErrorCode::BadRequest, "'" + id + "' is a " + m.category +
                                                          " model, not a Stable Diffusion model to train from");
        }
        return m;
    }
    throw ServiceError(ErrorCode::BadRequest, "'" + id + "' is not a model on this server (see /api/v1/models)");
}

std::string TrainingService::newModelId() const {
    for (;;) {
        std::string id = "ft-";
        for (const char c : randomToken()) {
            if (std::isalnum(static_cast<unsigned char>(c)) && id.size() < 19)
                id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        const auto all = m_generator.models();
        if (std::none_of(all.begin(), all.end(), [&](const auto& m) { return m.id == id; })) return id;
    }
}

void TrainingService::validate(const accounts::Caller& caller, TrainingSubmit& r, jobs::TrainingJob& job) const {
    Errors errors;
    if (blank(r.instancePrompt)) errors["instance_prompt"].push_back("is required");
    if (blank(r.classPrompt)) errors["class_prompt"].push_back("is required");
    const auto count = static_cast<int>(r.images.size());
    if (!limits::kTrainingImages.contains(count)) {
        errors["images"].push_back("must hold " + limits::kTrainingImages.describe() + " images, not " +
                                   std::to_string(count));
    } else {
        for (int i = 0; i < count; ++i) {
            const auto& image = r.images[static_cast<std::size_t>(i)];
            const auto name = "image " + std::to_string(i + 1);
            if (image.size() > limits::kMaxTrainingImageBytes) {
                errors["images"].push_back(name + " is larger than " +
                                           std::to_string(limits::kMaxTrainingImageBytes >> 20) + " MB");
            } else if (const auto problem = m_generation.imageProblem(image)) {
                errors["images"].push_back(name + " " + *problem);
            }
        }
    }
    if (!r.captions.empty() && r.captions.size() != r.images.size())
        errors["captions"].push_back("must hold one caption per image (" + std::to_string(count) + "), not " +
                                     std::to_string(r.captions.size()));
    if (r.maxTrainSteps && !limits::kTrainSteps.contains(*r.maxTrainSteps))
        errors["max_train_steps"].push_back("must be " + limits::kTrainSteps.describe());
    jobs::ModelDescription base;
    try {
        base = baseModel(caller, r.baseModelId);
    } catch (const ServiceError& e) {
        errors["base_model_id"].push_back(e.what());
    }
    if (!errors.empty()) throw validationError(std::move(errors));

    auto& p = job.params;
    p.method = r.method;
    p.baseModelId = base.id;
    p.instancePrompt = r.instancePrompt;
    p.classPrompt = r.classPrompt;
    p.negativePrompt = r.negativePrompt;
    p.maxTrainSteps = r.maxTrainSteps.value_or(
        std::clamp(limits::kDefaultStepsPerImage * count, limits::kTrainSteps.min, limits::kTrainSteps.max));
    p.seed = r.seed.value_or(randomSeed());
    job.modelId = newModelId();
    p.outputName = job.modelId;
    job.imageCount = count;
    job.trainingType = r.trainingType;
    job.baseModelType = r.baseModelType;
    job.captions = r.captions;
}

TrainingView TrainingService::submit(const accounts::Caller& caller, TrainingSubmit r) {
    // No trainer here: with other servers, one that has a trainer takes it (its inputs go to the shared
    // blob store); alone, nothing would ever run it.
    const bool here = m_options.enabled;
    if (!here && !m_runner.files().shared()) {
        throw ServiceError(ErrorCode::Unavailable, "this server cannot fine-tune models (it runs without a trainer)");
    }
    jobs::TrainingJob job;
    validate(caller, r, job);
    storage::JobRow row;
    row.userId = caller.userId;
    row.kind = r.method == jobs::TrainingMethod::LoRA ? storage::kLoraFineTuneKind : storage::kFineTuneKind;
    // Several servers: it runs here, where its inputs are; or, from the blob store, on the first server
    // with a trainer that takes it.
    row.home = here ? m_runner.home() : std::string();
    row.priority = caller.plan->priority;
    row.images = 0;  // no images are charged: a training counts against the plan's training quota
    row.trackId = r.trackId;
    row.webhook = r.webhook;
    row.createdAt = m_clock.nowSeconds();
    std::filesystem::path staged;
    try {
        if (here) {
            staged = m_runner.files().stageInputs(r.images);
        } else {
            job.inputBlobs = m_runner.files().putInputBlobs(caller.userId, r.images);
        }
    } catch (const std::exception& e) {
        std::cerr << "easel: storing training images: " << e.what() << '\n';  // names a path: log only
        ServiceError err(ErrorCode::Unavailable, "the server could not store the training images; nothing was charged");
        err.retryAfterSeconds = 60;
        throw err;
    }
    row.request = jobs::toJson(job).dump();
    try {
        m_db.transaction([&] {
            m_jobs.lockOwner(caller.userId);  // the counts below hold against other servers too
            const auto user = storage::UserRepository(m_db).findById(caller.userId);
            if (!user || user->deleting) throw ServiceError(ErrorCode::Unauthorized, "the account no longer exists");
            const auto& plan = *caller.plan;
            if (plan.trainingQuota) {
                const auto used = m_jobs.trainingsCharged(caller.userId);
                if (used >= *plan.trainingQuota) {
                    throw ServiceError(ErrorCode::PaymentRequired,
                                       "the " + plan.name + " plan allows " + std::to_string(*plan.trainingQuota) +
                                           " fine-tune(s) and " + std::to_string(used) +
                                           " are queued, running or trained; upgrade the plan to train more");
                }
            }
            if (m_jobs.activeCount(caller.userId, storage::JobFamily::Training) >= plan.maxQueued) {
                ServiceError e(ErrorCode::TooManyRequests, "the " + plan.name + " plan allows " +
                                                               std::to_string(plan.maxQueued) +
                                                               " trainings waiting or running at once");
                e.retryAfterSeconds = 600;
                throw e;
            }
            row.id = m_jobs.insert(row);
            // In the same transaction: the worker cannot claim the job before its images are in place.
            if (here) m_runner.files().adoptInputs(staged, row.id);
        });
    } catch (...) {
        if (here) {
            m_runner.files().discardStaged(staged);
        } else {
            m_runner.files().removeBlobs(caller.userId, job.inputBlobs);
        }
        throw;
    }
    m_runner.notify();
    const auto inserted = m_jobs.find(row.id);
    if (!inserted) throw ServiceError(ErrorCode::NotFound, "the training was deleted");
    return view(*inserted);
}

TrainingView TrainingService::view(const storage::JobRow& job) const {
    TrainingView v;
    v.job = job;
    try {
        v.request = jobs::trainingJobFromJson(nlohmann::json::parse(job.request));
    } catch (const std::exception&) {
        // A damaged request fails when it runs; the view shows what the row has.
    }
    const auto meta = metaOf(job);
    v.deleted = meta.value("deleted", false);
    v.totalSteps = v.request.params.maxTrainSteps;
    // What the run saved last (a running training on another server saves it every two seconds).
    const auto saved = jobs::progressFromMeta(meta, v.totalSteps);
    v.lossCurve = saved.lossCurve;
    v.secondsPerStep = saved.secondsPerStep;
    v.step = saved.step;
    v.total = v.totalSteps;
    if (const auto trainer = meta.find("trainer"); trainer != meta.end() && trainer->is_object())
        v.resumedFrom = trainer->value("resumed_from", 0);
    v.trainerStage = v.lossCurve.empty() ? "" : "training";
    switch (job.status) {
        case JobStatus::Queued:
            v.stage = jobs::stage::kQueued;
            break;
        case JobStatus::Running: {
            // Here, or on another server.
            const auto local = m_runner.progress(job.id);
            const auto& p = local ? *local : saved;
            v.stage = p.stage;
            v.trainerStage = p.trainerStage;
            v.step = p.step;
            v.total = p.total;
            v.lossCurve = p.lossCurve;
            v.secondsPerStep = p.secondsPerStep;
            if (p.secondsPerStep > 0) v.etaSeconds = p.etaSeconds();
            break;
        }
        case JobStatus::Succeeded:
            v.stage = v.deleted ? jobs::stage::kDeleted : jobs::stage::kReady;
            v.step = v.total = v.totalSteps;
            v.trainerStage = "training";
            v.etaSeconds = 0;
            break;
        case JobStatus::Failed:
            v.stage = jobs::stage::kFailed;
            break;
        case JobStatus::Cancelled:
            v.stage = jobs::stage::kCancelled;
            break;
    }
    if (!v.lossCurve.empty()) v.loss = v.lossCurve.back().second;
    return v;
}

storage::JobRow TrainingService::ownJob(const accounts::Caller& caller, std::int64_t trainingId) const {
    auto job = m_jobs.find(trainingId);
    if (!job || job->userId != caller.userId || storage::familyOf(job->kind) != storage::JobFamily::Training)
        throw ServiceError(ErrorCode::NotFound, "no training with id " + std::to_string(trainingId));
    return *job;
}

TrainingView TrainingService::status(const accounts::Caller& caller, std::int64_t trainingId) const {
    return view(ownJob(caller, trainingId));
}

void TrainingService::cancel(const accounts::Caller& caller, std::int64_t trainingId) {
    const auto job = ownJob(caller, trainingId);
    if (!active(job) || !m_runner.cancel(trainingId)) {
        throw ServiceError(ErrorCode::Conflict,
                           "training " + std::to_string(trainingId) + " has already ended (" + view(job).stage + ")");
    }
}

void TrainingService::remove(const accounts::Caller& caller, std::int64_t trainingId) {
    auto job = ownJob(caller, trainingId);
    if (active(job)) {
        m_runner.cancel(trainingId);
        if (!m_runner.waitFinished(trainingId, m_options.cancelWait)) {
            ServiceError e(ErrorCode::Conflict, "training " + std::to_string(trainingId) +
                                                    " is still stopping; delete it again in a minute");
            e.retryAfterSeconds = 60;
            throw e;
        }
        job = ownJob(caller, trainingId);
    }
    // A cancel that came too late lets the training finish: its model goes too.
    m_runner.files().uninstall(view(job).request.modelId);
    m_runner.files().removeWorkDir(trainingId);
    auto meta = metaOf(job);
    meta["deleted"] = true;
    m_jobs.setMeta(trainingId, meta.dump());
}

std::vector<TrainingView> TrainingService::list(const accounts::Caller& caller, int limit, int offset) const {
    std::vector<TrainingView> out;
    for (const auto& job : m_jobs.listForUser(caller.userId, std::clamp(limit, 1, 100), std::max(0, offset), false,
                                              storage::JobFamily::Training)) {
        out.push_back(view(job));
    }
    return out;
}

std::int64_t TrainingService::total(const accounts::Caller& caller) const {
    return m_jobs.countForUser(caller.userId, storage::JobFamily::Training);
}

void TrainingService::purge(std::int64_t userId) {
    m_runner.cancelAllOf(userId);
    for (const auto& job :
         m_jobs.listForUser(userId, std::numeric_limits<int>::max(), 0, false, storage::JobFamily::Training)) {
        m_runner.files().removeWorkDir(job.id);
        m_runner.files().uninstall(view(job).request.modelId);
    }
}

}  // namespace easel::service
