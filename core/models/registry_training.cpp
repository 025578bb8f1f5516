// ModelRegistry as the job layer's jobs::ModelTrainer: DreamBooth and LoRA on a registered model, through
// inference::training::fineTune on a float32 engine of the training's own (the shared engines keep
// generating, and a DreamBooth changes the weights of the engine it trains).

#include "common/service_error.h"
#include "inference/training/fine_tuner.h"
#include "models/model_registry.h"

namespace easel::models {

jobs::TrainedModel ModelRegistry::train(const jobs::TrainingParams& params,
                                        const std::vector<jobs::TrainingImage>& images,
                                        const std::filesystem::path& workDir, const jobs::TrainingProgress& progress) {
    std::filesystem::path base;
    if (m_default.hasModel() && (params.baseModelId.empty() || params.baseModelId == m_default.model().id)) {
        base = m_default.model().path;
    } else {
        std::lock_guard lock(m_tableMutex);
        const Entry* e = find(params.baseModelId);
        if (e == nullptr || e->category != "stable_diffusion")
            throw ServiceError(ErrorCode::BadRequest, "model '" + params.baseModelId + "' is not one to train from");
        base = e->path;
    }

    namespace training = inference::training;
    training::FineTuneOptions o;
    o.method = params.method == jobs::TrainingMethod::LoRA ? training::FineTuneMethod::LoRA
                                                           : training::FineTuneMethod::DreamBooth;
    o.instancePrompt = params.instancePrompt;
    o.classPrompt = params.classPrompt;
    o.negativePrompt = params.negativePrompt;
    o.steps = params.maxTrainSteps;
    o.seed = params.seed;
    o.loraRank = params.loraRank;
    o.loraAlpha = params.loraAlpha;
    o.precision = m_options.precision == "bf16" ? "bf16" : "fp32";  // bf16 autocast over fp32 weights
    o.workDir = workDir;
    o.checkpointEverySeconds = m_trainingCheckpointSeconds;
    o.outputName = params.outputName.empty() ? workDir.filename().string() : params.outputName;

    std::vector<training::FineTuneImage> decoded;
    for (std::size_t i = 0; i < images.size(); ++i) {
        try {
            decoded.push_back({inference::decodeImage(images[i].encoded), images[i].caption});
        } catch (const inference::ImageError& e) {
            throw ServiceError(ErrorCode::BadRequest, "image " + std::to_string(i + 1) + ": " + e.what());
        }
    }
    auto options = m_options;
    // DreamBooth keeps fp32 master weights (autocast gives bf16 speed where asked); a LoRA's base is
    // frozen, so it stays in the server's precision.
    if (o.method == training::FineTuneMethod::DreamBooth) options.precision = "fp32";
    training::FineTuneResult result;
    try {
        inference::Engine engine(options);
        engine.loadModel(base);
        result = training::fineTune(engine, decoded, o, [&](const training::FineTuneProgress& p) {
            return !progress || progress({p.stage, p.step, p.total, p.loss});
        });
    } catch (const inference::GenerationCancelledError&) {
        throw jobs::GenerationCancelledError();
    } catch (const inference::GenerationError& e) {
        throw ServiceError(ErrorCode::BadRequest, e.what());
    }
    jobs::TrainedModel out;
    out.path = result.path;
    out.category = o.method == training::FineTuneMethod::LoRA ? "lora" : "stable_diffusion";
    out.meta = {{"steps", result.steps},
                {"resumed_from", result.resumedFrom},
                {"final_loss", result.finalLoss},
                {"seconds_per_step", result.secondsPerStep}};
    return out;
}

}  // namespace easel::models
