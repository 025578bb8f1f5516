#pragma once
// The inference library's public face: load a model, generate images. Torch-free (pimpl), so the
// service layer, the server and the CLI never see libtorch headers.
//
// Seeds: sample i of a request uses seed + i. Its initial noise is drawn in float32 on the CPU by
// libtorch's default generator (mt19937) seeded with that value, shape [1, 4, H/f, W/f]: the same
// numbers as PyTorch's torch.randn(..., generator=torch.Generator("cpu").manual_seed(seed)), whatever
// device then runs the model. Ancestral samplers continue drawing from the same generator.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/size_conditioning.h"
#include "inference/image/image.h"

namespace easel::inference {

struct EngineOptions {
    std::string device = "cpu";            // "cpu" or "cuda" (when libtorch has CUDA)
    std::string precision = "fp32";        // "fp32" or "bf16"
    int threads = 0;                       // 0: all cores
    std::filesystem::path clipVocabulary;  // bpe_simple_vocab_16e6.txt.gz for single-file SD checkpoints
    // VAE decoding in overlapping tiles of vaeTileSide pixels (vaeTileOverlap shared, blended), so that a
    // large image's decode fits in memory: a whole decode holds about 12 full-resolution tensors of the
    // decoder's first width (1.45 GiB at 512² in fp32, measured; 23 GiB at 2048²). "auto" tiles only a
    // decode whose estimate exceeds half the memory available at that moment (MemAvailable), so every
    // decode that fits stays whole and exact; "always" tiles whatever is larger than one tile; "never".
    // Tiles blend without seams, but each tile's GroupNorms see only that tile. On a GPU "auto" decodes
    // whole. Side and overlap: multiples of 8, the overlap at most half the side.
    std::string vaeTiling = "auto";
    int vaeTileSide = 512;
    int vaeTileOverlap = 128;
};

struct ModelInfo {
    std::string id;      // folder or file stem
    std::string family;  // "sd1", "sd2" or "sdxl": which LoRAs and embeddings fit
    std::string name;
    std::string description;  // "SD 1.x (epsilon)" or the model's own words
    std::filesystem::path path;
    bool inpainting = false;
    int defaultWidth = 512;
    int defaultHeight = 512;
    int defaultSteps = 20;
    float defaultGuidance = 7.5f;
    std::string defaultScheduler = "DPM++ 2M";  // model.json "default_scheduler"
    // How every scheduler spaces its timesteps for this model: "linspace", "leading" or "trailing"
    // (model.json "timestep_spacing"); empty: each scheduler's diffusers default. Few-step distilled
    // models (SDXL-Turbo, SD-Turbo) are trained on trailing timesteps: one step starts at t = 999.
    // model.json "turbo": true means trailing, 1 step, guidance 0 and Euler a unless it says otherwise.
    std::string timestepSpacing;
    int sizeMultiple = 8;  // width and height must be multiples of this
};

// A LoRA / LyCORIS file applied to one request (merged into the weights for it, taken out after).
struct LoraRequest {
    std::string name;  // for the infotext's <lora:name:...> and "Lora hashes"
    std::filesystem::path path;
    double textEncoderStrength = 1.0;
    double unetStrength = 1.0;
};

// A textual-inversion embedding: its vectors take the place of `trigger` wherever the prompt says it.
struct EmbeddingRequest {
    std::string trigger;
    std::filesystem::path path;
};

// What an adapter file is, read without a model (for the model registry's listing and checks).
struct AdapterFileInfo {
    std::string family;       // "sd1", "sd2", "sdxl" or empty when the file does not say
    std::string description;  // "kohya LoRA/LoCon, 84 modules", "textual inversion, 2 vectors of 768"
};

struct GenerationRequest {
    std::string prompt;
    std::string negativePrompt;
    int width = 0;  // 0: the model's default
    int height = 0;
    int steps = 0;                // 0: the model's default
    float guidanceScale = -1.0f;  // < 0: the model's default
    int samples = 1;
    std::optional<std::int64_t> seed;  // nullopt: random
    std::string scheduler;             // diffusers or A1111 spelling; empty: the model's default
    bool karras = false;               // use_karras_sigmas
    int clipSkip = 1;
    std::vector<LoraRequest> loras;
    std::vector<EmbeddingRequest> embeddings;
    std::optional<Image> initImage;  // img2img / inpaint
    float strength = 0.75f;
    std::optional<Image> mask;  // white = repaint
    int previewEvery = 0;    // a preview every N steps (0: never): decoded for small latents, else a linear map to RGB
    SizeConditioning sizes;  // SDXL's size conditioning (0: the image's own size); ignored by SD 1.x/2.x
};

struct GenerationProgress {
    int step = 0;
    int total = 0;
    int sample = 0;  // which sample of the request
    double elapsedSeconds = 0;
    const Image* preview = nullptr;
};
// Return false to cancel (generate() then throws GenerationCancelledError).
using ProgressCallback = std::function<bool(const GenerationProgress&)>;

struct GenerationResult {
    std::vector<Image> images;
    std::vector<std::int64_t> seeds;
    std::vector<std::string> infotexts;  // A1111 "parameters" text per image
    std::string scheduler;               // the scheduler used (the model's default where the request named none)
    double seconds = 0;
};

class GenerationError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
class GenerationCancelledError : public GenerationError {
public:
    GenerationCancelledError() : GenerationError("generation cancelled") {}
};

class Engine {
public:
    explicit Engine(EngineOptions options = {});
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // A folder with model.json (Easel's format), a diffusers folder (model_index.json), or an SD
    // 1.x/2.x/XL single-file .safetensors.
    // Throws ModelLoadError / GenerationError with a message naming what is wrong.
    void loadModel(const std::filesystem::path& path);
    bool hasModel() const;
    const ModelInfo& model() const;

    // nullopt when `name` is a scheduler Easel knows (diffusers or A1111 spelling), else the message.
    static std::optional<std::string> checkSchedulerName(const std::string& name);

    // Reads a LoRA-family file (LoRA, LoCon, LoHa, LoKr; kohya or diffusers names) or a textual-inversion
    // embedding; throws GenerationError with a user-facing message when it is not one.
    static AdapterFileInfo inspectLora(const std::filesystem::path& path);
    static AdapterFileInfo inspectEmbedding(const std::filesystem::path& path);

    // Validates the request (GenerationError with a user-facing message) and runs it.
    GenerationResult generate(const GenerationRequest& request, const ProgressCallback& progress = {});

    // The loaded networks and tokenizers, for in-process training (training/fine_tuner.cpp): `use` runs
    // under the engine's lock. The type is defined with libtorch in inference/engine_loaded.h.
    struct Loaded;
    void withLoaded(const std::function<void(Loaded&)>& use);

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace easel::inference
