#include "jobs/training_job.h"

#include <algorithm>

namespace easel::jobs {

nlohmann::json toJson(const TrainingJob& job) {
    const auto& p = job.params;
    return {{"method", p.method == TrainingMethod::LoRA ? "lora" : "dreambooth"},
            {"base_model_id", p.baseModelId},
            {"instance_prompt", p.instancePrompt},
            {"class_prompt", p.classPrompt},
            {"negative_prompt", p.negativePrompt},
            {"max_train_steps", p.maxTrainSteps},
            {"seed", p.seed},
            {"lora_rank", p.loraRank},
            {"lora_alpha", p.loraAlpha},
            {"output_name", p.outputName},
            {"model_id", job.modelId},
            {"image_count", job.imageCount},
            {"training_type", job.trainingType},
            {"base_model_type", job.baseModelType},
            {"captions", job.captions},
            {"input_blobs", job.inputBlobs}};
}

TrainingJob trainingJobFromJson(const nlohmann::json& j) {
    TrainingJob job;
    auto& p = job.params;
    p.method = j.at("method").get<std::string>() == "lora" ? TrainingMethod::LoRA : TrainingMethod::DreamBooth;
    p.baseModelId = j.at("base_model_id").get<std::string>();
    p.instancePrompt = j.at("instance_prompt").get<std::string>();
    p.classPrompt = j.value("class_prompt", "");
    p.negativePrompt = j.value("negative_prompt", "");
    p.maxTrainSteps = j.at("max_train_steps").get<int>();
    p.seed = j.value("seed", std::uint64_t{0});
    p.loraRank = j.value("lora_rank", 16);
    p.loraAlpha = j.value("lora_alpha", 16.0);
    p.outputName = j.value("output_name", "");
    job.modelId = j.at("model_id").get<std::string>();
    job.imageCount = j.at("image_count").get<int>();
    job.trainingType = j.value("training_type", "");
    job.baseModelType = j.value("base_model_type", "");
    job.captions = j.value("captions", std::vector<std::string>{});
    job.inputBlobs = j.value("input_blobs", std::vector<std::string>{});
    return job;
}

double TrainingProgressState::etaSeconds() const {
    if (secondsPerStep <= 0) return 0;
    double left = std::max(0, total - step);
    // Drawing the class images comes before every optimiser step.
    if (trainerStage == "class_images") left += trainSteps;
    if (trainerStage == "saving") left = 0;
    return secondsPerStep * left;
}

nlohmann::json progressMeta(const TrainingProgressState& p) {
    return {{"stage", p.stage},
            {"trainer_stage", p.trainerStage},
            {"step", p.step},
            {"trainer_total", p.total},
            {"total_steps", p.trainSteps},
            {"seconds_per_step", p.secondsPerStep},
            {"loss_curve", lossCurveJson(p.lossCurve)}};
}

TrainingProgressState progressFromMeta(const nlohmann::json& meta, int trainSteps) {
    TrainingProgressState p;
    p.stage = meta.value("stage", std::string(stage::kStarted));
    p.trainerStage = meta.value("trainer_stage", std::string());
    p.step = meta.value("step", 0);
    p.trainSteps = meta.value("total_steps", trainSteps);
    p.total = meta.value("trainer_total", p.trainSteps);
    p.secondsPerStep = meta.value("seconds_per_step", 0.0);
    p.lossCurve = lossCurveFromJson(meta);
    if (p.trainerStage.empty() && !p.lossCurve.empty()) p.trainerStage = "training";  // saved before the stage was
    if (!p.lossCurve.empty()) p.loss = p.lossCurve.back().second;
    return p;
}

nlohmann::json lossCurveJson(const std::vector<std::pair<int, double>>& curve) {
    auto out = nlohmann::json::array();
    for (const auto& [step, loss] : curve) out.push_back({step, loss});
    return out;
}

std::vector<std::pair<int, double>> lossCurveFromJson(const nlohmann::json& meta) {
    std::vector<std::pair<int, double>> out;
    if (!meta.is_object()) return out;
    const auto it = meta.find("loss_curve");
    if (it == meta.end() || !it->is_array()) return out;
    for (const auto& point : *it) {
        if (point.is_array() && point.size() == 2 && point[0].is_number() && point[1].is_number())
            out.emplace_back(point[0].get<int>(), point[1].get<double>());
    }
    return out;
}

}  // namespace easel::jobs
