#include "server/training_codec.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>

#include "common/clock.h"
#include "common/request_limits.h"

namespace easel::server {
namespace {

using nlohmann::json;

// The hosted API's training_type values; "null" (or nothing) is none. Kept and echoed: the trainer
// needs no hint about the subject.
constexpr std::array<const char*, 4> kTrainingTypes{"men", "women", "female", "couple"};

std::vector<jobs::Bytes> readImages(FieldReader& r, const service::GenerationService& g, std::int64_t callerId,
                                    const ImageFetcher& fetcher, const std::string& baseUrl) {
    std::vector<jobs::Bytes> out;
    const auto it = r.body.find("images");
    if (it == r.body.end() || it->is_null()) {
        r.errors["images"].push_back("is required: a list of image links or data URLs");
        return out;
    }
    if (!it->is_array()) {
        r.errors["images"].push_back("must be a list of image links or data URLs");
        return out;
    }
    // Counted before anything is fetched: a list of a thousand links must not start a thousand fetches.
    if (!limits::kTrainingImages.contains(static_cast<int>(it->size()))) {
        r.errors["images"].push_back("must hold " + limits::kTrainingImages.describe() + " images, not " +
                                     std::to_string(it->size()));
        return out;
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
        const auto label = "image " + std::to_string(i + 1) + " ";
        const auto& value = (*it)[i];
        if (!value.is_string() || value.get<std::string>().empty()) {
            r.errors["images"].push_back(label + "must be a link or a data URL");
            continue;
        }
        if (auto bytes = readImageValue(r, "images", label, value.get<std::string>(), g, callerId, fetcher, baseUrl))
            out.push_back(std::move(*bytes));
    }
    return out;
}

std::string fixed(double v, int digits) {
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(digits);
    s << v;
    return s.str();
}

}  // namespace

service::TrainingSubmit parseTraining(const json& body, jobs::TrainingMethod method,
                                      const service::GenerationService& g, std::int64_t callerId,
                                      const ImageFetcher& fetcher, const std::string& baseUrl) {
    FieldReader r{body, {}};
    service::TrainingSubmit out;
    out.method = method;
    out.instancePrompt = r.string("instance_prompt", 2000).value_or("");
    out.classPrompt = r.string("class_prompt", 2000).value_or("");
    out.baseModelId = r.string("base_model_id", 200).value_or("");
    out.negativePrompt = r.string("negative_prompt", 20'000).value_or("");
    out.trainingType = r.string("training_type", 40).value_or("");
    if (out.trainingType == "null") out.trainingType.clear();
    if (!out.trainingType.empty() &&
        std::find(kTrainingTypes.begin(), kTrainingTypes.end(), out.trainingType) == kTrainingTypes.end()) {
        r.errors["training_type"].push_back("must be men, women, female, couple or null");
    }
    if (const auto steps = r.integer("max_train_steps")) {
        if (!limits::kTrainSteps.contains(static_cast<int>(std::clamp<std::int64_t>(*steps, -1, 1'000'000)))) {
            r.errors["max_train_steps"].push_back("must be " + limits::kTrainSteps.describe());
        } else {
            out.maxTrainSteps = static_cast<int>(*steps);
        }
    }
    if (const auto seed = r.integer("seed"); seed && *seed != -1) {  // -1 / null: random
        if (!limits::kSeed.contains(*seed)) {
            r.errors["seed"].push_back("must be " + limits::kSeed.describe() + " or -1");
        } else {
            out.seed = static_cast<std::uint64_t>(*seed);
        }
    }
    if (method == jobs::TrainingMethod::LoRA) {
        out.baseModelType = r.string("base_model_type", 40).value_or("");
        const auto type = r.string("lora_type", 40).value_or("lora");
        if (type == "lycoris") {
            r.errors["lora_type"].push_back("lycoris is not supported yet; use lora");
        } else if (!type.empty() && type != "lora") {
            r.errors["lora_type"].push_back("must be lora");
        }
    }
    out.webhook = r.string("webhook", 2000).value_or("");
    if (!out.webhook.empty() && out.webhook.rfind("http://", 0) != 0 && out.webhook.rfind("https://", 0) != 0) {
        r.errors["webhook"].push_back("must be an http:// or https:// URL");
    }
    out.trackId = r.string("track_id", 200).value_or("");
    if (const auto it = r.body.find("captions"); it != r.body.end() && !it->is_null()) {
        // Easel's extension: a caption per image, as kohya's .txt files beside the pictures.
        if (!it->is_array() || !std::all_of(it->begin(), it->end(), [](const json& c) {
                return c.is_string() && c.get<std::string>().size() <= 2000;
            })) {
            r.errors["captions"].push_back("must be a list of strings (at most 2000 characters each), one per image");
        } else {
            out.captions = it->get<std::vector<std::string>>();
        }
    }
    out.images = readImages(r, g, callerId, fetcher, baseUrl);
    r.check();
    return out;
}

std::string progressLine(const service::TrainingView& v) {
    namespace stage = jobs::stage;
    const auto eta = v.etaSeconds ? ", ETA " + std::to_string(std::lround(*v.etaSeconds)) + " s" : std::string();
    const auto loss = v.loss ? ", loss " + fixed(*v.loss, 4) : std::string();
    const auto steps = "Step " + std::to_string(v.step) + "/" + std::to_string(v.total);
    if (v.stage == stage::kQueued) return "Waiting for the GPU (queued)";
    if (v.stage == stage::kStarted) {
        if (v.trainerStage == "class_images")
            return "Drawing class images " + std::to_string(v.step) + "/" + std::to_string(v.total) + eta;
        if (v.trainerStage == "training") return steps + loss + eta;
        return "Loading the base model";
    }
    if (v.stage == stage::kTrained || v.stage == stage::kSaving) return "Saving the trained model" + loss;
    if (v.stage == stage::kDeploying) return "Loading the trained model";
    if (v.stage == stage::kReady) return steps + loss + ": " + v.request.modelId + " is ready";
    if (v.stage == stage::kFailed) return "Training failed: " + v.job.error + " (not charged)";
    if (v.stage == stage::kCancelled) return "Training cancelled (not charged)";
    if (v.stage == stage::kDeleted) return "The trained model " + v.request.modelId + " was deleted";
    return v.stage;
}

json trainingJson(const service::TrainingView& v, bool withCurve) {
    json out{{"status", "success"},
             {"data", progressLine(v)},
             {"training_id", v.job.id},
             {"model_id", v.request.modelId},
             {"training_status", v.stage},
             {"kind", v.job.kind},
             {"base_model_id", v.request.params.baseModelId},
             {"instance_prompt", v.request.params.instancePrompt},
             {"training_type", v.request.trainingType.empty() ? json(nullptr) : json(v.request.trainingType)},
             // Optimiser steps; drawing the class images comes before the first (stage_step counts those).
             {"step", v.trainerStage == "training" || v.stage == jobs::stage::kReady ? v.step
                      : v.trainerStage == "saving"                                   ? v.totalSteps
                                                                                     : 0},
             {"total_steps", v.totalSteps},
             {"last_loss", v.loss ? json(*v.loss) : json(nullptr)},
             {"seconds_per_step", v.secondsPerStep},
             {"eta_seconds", v.etaSeconds ? json(*v.etaSeconds) : json(nullptr)},
             {"created_at", isoTime(v.job.createdAt)}};
    setMessage(out, v.stage);
    if (v.stage == jobs::stage::kStarted && !v.trainerStage.empty()) {
        out["trainer_stage"] = v.trainerStage;  // class_images | training | saving, with its own step/total
        out["stage_step"] = v.step;
        out["stage_total"] = v.total;
    }
    if (!v.request.baseModelType.empty()) out["base_model_type"] = v.request.baseModelType;
    // A training that a restart interrupted went on from its last checkpoint: the step it resumed at.
    if (v.resumedFrom > 0) out["resumed_from"] = v.resumedFrom;
    if (!v.job.trackId.empty()) out["track_id"] = v.job.trackId;
    if (v.stage == jobs::stage::kFailed) {
        // "messege" keeps the stage; "message" says why, as clients of the hosted API read a failure.
        out["message"] = v.job.error;
        out["error"] = v.job.error;
    }
    if (withCurve) out["loss"] = jobs::lossCurveJson(v.lossCurve);  // [[step, loss], ...]
    return out;
}

}  // namespace easel::server
