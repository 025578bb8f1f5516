#include "server/training_controller.h"

#include <nlohmann/json.hpp>

#include "server/authenticated.h"
#include "server/training_codec.h"

namespace easel::server {
namespace {

using nlohmann::json;

// Twenty images as data URLs of a few MB each.
constexpr std::size_t kTrainingBodyLimit = 64u * 1024 * 1024;

std::int64_t trainingId(const Request& req) {
    const auto& text = req.pathParams.at("id");
    try {
        std::size_t used = 0;
        const auto v = std::stoll(text, &used);
        if (used == text.size() && v > 0) return v;
    } catch (const std::exception&) {
    }
    throw ServiceError(ErrorCode::NotFound, "no training with id " + text);
}

struct TrainingRoutes {
    service::TrainingService& training;
    service::GenerationService& generation;
    std::string publicUrl;
    ImageFetcher fetcher;

    Response submitAction(jobs::TrainingMethod method, const Request& req, const json& body,
                          const service::Access& who) const {
        auto request = parseTraining(body, method, generation, who.caller.userId, fetcher, baseUrlFor(req, publicUrl));
        const auto view = training.submit(who.caller, std::move(request));
        // Answered as the hosted API answers a new training, whether or not the worker took it already.
        json out{
            {"status", "success"},
            {"training_id", view.job.id},
            {"model_id", view.request.modelId},
            {"training_status", jobs::stage::kQueued},
            {"fetch_result", baseUrlFor(req, publicUrl) + "/api/v3/fine_tune_status/" + std::to_string(view.job.id)}};
        setMessage(out, jobs::stage::kQueued);
        if (!view.job.trackId.empty()) out["track_id"] = view.job.trackId;
        return Response::json(200, out);
    }

    Response statusAction(const Request& req, const json&, const service::Access& who) const {
        return Response::json(200, trainingJson(training.status(who.caller, trainingId(req))));
    }

    Response cancelAction(const Request& req, const json&, const service::Access& who) const {
        const auto id = trainingId(req);
        training.cancel(who.caller, id);
        const auto view = training.status(who.caller, id);
        json out{{"status", "success"}, {"training_id", id}, {"training_status", view.stage}};
        // A queued training is cancelled at once; a running one stops at its next step.
        setMessage(out, view.stage == jobs::stage::kCancelled ? "training cancelled (not charged)"
                                                              : "cancellation requested; the training stops at its "
                                                                "next step (not charged)");
        return Response::json(200, out);
    }

    Response deleteAction(const Request& req, const json&, const service::Access& who) const {
        const auto id = trainingId(req);
        training.remove(who.caller, id);
        const auto view = training.status(who.caller, id);
        json out{{"status", "success"}, {"training_id", id}, {"model_id", view.request.modelId}};
        setMessage(out, "the trained model " + view.request.modelId + " was deleted");
        return Response::json(200, out);
    }

    Response listAction(const Request& req, const json& body, const service::Access& who) const {
        FieldReader r{body, {}};
        const int limit = r.smallInteger("limit", queryInt(req, "limit", 20, 1, 100));
        const int offset = r.smallInteger("offset", queryInt(req, "offset", 0, 0, 1 << 30));
        r.check();
        json items = json::array();
        for (const auto& v : training.list(who.caller, limit, offset)) items.push_back(trainingJson(v, false));
        return Response::json(200, {{"status", "success"}, {"total", training.total(who.caller)}, {"data", items}});
    }
};

}  // namespace

void registerTrainingRoutes(Router& router, service::AccessControl& access, service::TrainingService& training,
                            service::GenerationService& generation, GenerationRoutesOptions options) {
    const auto routes = std::make_shared<TrainingRoutes>(
        TrainingRoutes{training, generation, options.publicUrl,
                       ImageFetcher{options.outbound, options.allowPrivateImageUrls, options.imageFetchTimeout}});
    auto bind = [&access, routes](Credential credential, auto action) {
        return authenticated(access, credential,
                             [routes, action](const Request& req, const json& body, const service::Access& who) {
                                 return ((*routes).*action)(req, body, who);
                             });
    };
    auto submit = [&access, routes](jobs::TrainingMethod method) {
        return authenticated(access, Credential::ApiKeyGeneration,
                             [routes, method](const Request& req, const json& body, const service::Access& who) {
                                 return routes->submitAction(method, req, body, who);
                             });
    };
    router.add("POST", "/api/v3/fine_tune", submit(jobs::TrainingMethod::DreamBooth),
               "Fine-tune a Stable Diffusion model on your images (DreamBooth); answers training_id and the "
               "model_id the result will have (private to this account)",
               kTrainingBodyLimit);
    router.add("POST", "/api/v3/lora_fine_tune", submit(jobs::TrainingMethod::LoRA),
               "Train a LoRA on your images (use it as lora_model; private to this account)", kTrainingBodyLimit);
    router.add("POST", "/api/v3/fine_tune_status/{id}", bind(Credential::ApiKey, &TrainingRoutes::statusAction),
               "Stage of a training (deploying_gpu, training_started, ..., model_ready), step, loss curve and ETA");
    router.add("POST", "/api/v3/cancel_training/{id}", bind(Credential::ApiKey, &TrainingRoutes::cancelAction),
               "Cancel a queued or running training (it is not charged)");
    router.add("POST", "/api/v3/cancle_training/{id}", bind(Credential::ApiKey, &TrainingRoutes::cancelAction),
               "Cancel a training (the hosted API's documented spelling)");
    router.add("POST", "/api/v3/finetune/delete/{id}", bind(Credential::ApiKey, &TrainingRoutes::deleteAction),
               "Delete a training's trained model (a queued or running training is cancelled first)");
    router.add("POST", "/api/v3/finetune_list", bind(Credential::ApiKey, &TrainingRoutes::listAction),
               "This account's trainings, newest first, with their stage and model_id (limit, offset)");
}

}  // namespace easel::server
