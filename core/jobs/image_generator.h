#pragma once
// The one thing the job layer needs from inference: turn parameters into PNGs. An interface, so
// that the backend and its tests run without libtorch (tests use a fake; the server wires
// inference::Engine in app/).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "jobs/generation_params.h"

namespace easel::jobs {

using Bytes = std::vector<unsigned char>;

struct ModelDescription {
    std::string id;
    std::string name;
    std::string description;
    int defaultWidth = 512;
    int defaultHeight = 512;
    int defaultSteps = 20;
    double defaultGuidance = 7.5;
    int sizeMultiple = 8;
    bool inpainting = false;
    // "stable_diffusion" (a model to generate with), "lora" (LoRA / LyCORIS, for lora_model and
    // <lora:...> tags) or "embeddings" (textual inversion, for embeddings_model), as the hosted API's
    // model_category names them.
    std::string category = "stable_diffusion";
    // The architecture a model is, or an adapter is made for: "sd1", "sd2", "sdxl"; empty when not known
    // (then a mismatch shows when the job runs).
    std::string family;
    // 0: every account may use it. Else the account that loaded it (a private LoRA or embedding): only
    // that account (and admins) see and use it, and its file counts against that account's storage.
    std::int64_t ownerId = 0;
    std::uint64_t fileBytes = 0;  // adapters: the size of the file
};

struct GeneratedImages {
    std::vector<Bytes> pngs;  // with the A1111 "parameters" chunk
    nlohmann::json meta;      // the parameters actually used, incl. the seed
};

// Thrown by a generator when its progress callback asked it to stop.
class GenerationCancelledError : public std::runtime_error {
public:
    GenerationCancelledError() : std::runtime_error("cancelled") {}
};

// One denoising step of one sample. `previewPng` (may be null) is a small PNG of what the image is
// becoming, valid only during the call.
struct GenerationStep {
    int step = 0;
    int total = 0;
    int sample = 0;
    const Bytes* previewPng = nullptr;
};
// Return false to cancel.
using ProgressCallback = std::function<bool(const GenerationStep&)>;

class ImageGenerator {
public:
    virtual ~ImageGenerator() = default;
    virtual std::vector<ModelDescription> models() const = 0;
    // The model used when a request names none (empty when none is loaded).
    virtual std::optional<ModelDescription> defaultModel() const = 0;
    // Throws ServiceError(BadRequest) for parameters the model cannot take, GenerationCancelledError
    // when cancelled, anything else for a failure.
    virtual GeneratedImages generate(const GenerationParams& params, const Bytes* initPng, const Bytes* maskPng,
                                     const ProgressCallback& progress) = 0;

    // nullopt when the scheduler name is usable, else a message (checked before a job is queued).
    virtual std::optional<std::string> checkScheduler(const std::string& name) const {
        (void)name;
        return std::nullopt;
    }

    // Model management (the admin's load_model / delete_model). `path` is a model folder or a
    // single-file checkpoint; adding checks that it loads and throws a message when it does not.
    // `ownerId` 0 shares it with every account; else it is that account's own (a fine-tuned model):
    // ModelDescription::ownerId says so, and only that account (and admins) see and use it.
    virtual ModelDescription addModel(const std::string& id, const std::filesystem::path& path,
                                      std::int64_t ownerId) = 0;
    // A shared model. Implementations add `using ImageGenerator::addModel;` to keep this overload.
    ModelDescription addModel(const std::string& id, const std::filesystem::path& path) {
        return addModel(id, path, 0);
    }
    virtual bool removeModel(const std::string& id) = 0;
    // A LoRA (`category` "lora") or textual-inversion embedding ("embeddings") file, listed by models()
    // under that category and usable by id in requests; checks that it reads and throws a message
    // when it does not. removeModel() removes it. `ownerId` 0 shares it; else it is that account's own.
    virtual ModelDescription addAdapter(const std::string& id, const std::filesystem::path& path,
                                        const std::string& category, std::int64_t ownerId) {
        (void)id;
        (void)path;
        (void)ownerId;
        throw std::runtime_error("this server cannot load " + category + " models");
    }
};

}  // namespace easel::jobs
