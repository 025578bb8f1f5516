#include "inference/engine.h"

#include "inference/runtime_info.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include <openssl/evp.h>

#include "common/lora_tags.h"
#include "common/request_limits.h"
#include "inference/adapters/adapter.h"
#include "inference/adapters/adapter_stack.h"
#include "inference/adapters/embedding.h"
#include "inference/engine_loaded.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/loading/diffusers_loader.h"
#include "inference/pipelines/image_to_image.h"
#include "inference/pipelines/inpaint.h"
#include "inference/pipelines/pipeline.h"
#include "inference/pipelines/text_to_image.h"
#include "inference/schedulers/scheduler.h"
#include "inference/tensor_utils.h"
#include "inference/tokenizer/clip_tokenizer.h"
#include "inference/tokenizer/word_tokenizer.h"

namespace easel::inference {
namespace {

constexpr int kMaxSamples = limits::kSamples.max;
constexpr int kMaxSide = limits::kEngineMaxSide;

std::string stemOf(const std::filesystem::path& p) {
    return std::filesystem::is_directory(p) ? p.filename().string() : p.stem().string();
}

// A1111's short hash of a LoRA for the infotext's "Lora hashes" (its addnet hash, which kohya also
// writes as sshs_model_hash): sha256 of the file after the safetensors header, 12 hex digits.
std::string loraShortHash(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    unsigned char len[8] = {};
    if (!in.read(reinterpret_cast<char*>(len), 8)) return {};
    std::uint64_t headerSize = 0;
    for (int i = 7; i >= 0; --i) headerSize = (headerSize << 8) | len[i];
    in.seekg(static_cast<std::streamoff>(8 + headerSize));
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1) return {};
    std::vector<char> buffer(1 << 20);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        if (in.gcount() > 0) EVP_DigestUpdate(md.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md.get(), digest, &n);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n && out.size() < 12; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 15]);
    }
    return out;
}

// diffusers' timestep_spacing spellings; nullopt for another.
std::optional<TimestepSpacing> timestepSpacingOf(const std::string& name) {
    if (name == "linspace") return TimestepSpacing::Linspace;
    if (name == "leading") return TimestepSpacing::Leading;
    if (name == "trailing") return TimestepSpacing::Trailing;
    return std::nullopt;
}

// timestep_spacing of a diffusers folder's scheduler/scheduler_config.json; nullopt when the file or the
// key is missing. Throws ModelLoadError for an unreadable file or a spacing Easel does not know.
std::optional<std::string> schedulerConfigSpacing(const std::filesystem::path& folder) {
    const auto file = folder / "scheduler" / "scheduler_config.json";
    std::error_code error;
    if (!std::filesystem::exists(file, error)) return std::nullopt;
    std::ifstream in(file);
    const auto config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!config.is_object()) throw ModelLoadError("'" + file.string() + "' is not a JSON object");
    const auto it = config.find("timestep_spacing");
    if (it == config.end() || it->is_null()) return std::nullopt;
    if (!it->is_string() || !timestepSpacingOf(it->get<std::string>())) {
        throw ModelLoadError("'" + file.string() + "' timestep_spacing " + it->dump() +
                             " is not linspace, leading or trailing");
    }
    return it->get<std::string>();
}

std::string familyName(AdapterBase base) {
    switch (base) {
        case AdapterBase::SD1:
            return "sd1";
        case AdapterBase::SD2:
            return "sd2";
        case AdapterBase::SDXL:
            return "sdxl";
        case AdapterBase::Unknown:
        case AdapterBase::Other:
            break;
    }
    return {};
}

// Opened adapter files, kept while their file is unchanged: AdapterStack::apply() recognises an
// unchanged set by the identity of these objects, so a repeated request merges nothing.
template <typename T>
struct FileCache {
    struct Entry {
        std::filesystem::file_time_type modified;
        std::shared_ptr<const T> value;
    };
    std::map<std::string, Entry> entries;

    template <typename Open>
    std::shared_ptr<const T> get(const std::filesystem::path& path, Open open) {
        std::error_code ec;
        const auto modified = std::filesystem::last_write_time(path, ec);
        auto it = entries.find(path.string());
        if (it != entries.end() && !ec && it->second.modified == modified) return it->second.value;
        auto value = std::make_shared<const T>(open());
        if (entries.size() >= 64) entries.clear();  // a bound, not an LRU: requests rarely use many
        entries[path.string()] = {modified, value};
        return value;
    }
};

}  // namespace

struct Engine::Impl {
    EngineOptions options;
    torch::Device device{torch::kCPU};
    torch::Dtype dtype = torch::kFloat32;
    std::mutex mutex;
    std::optional<StableDiffusionModel> model;
    ModelInfo info;
    std::optional<CLIPTokenizer> clipTokenizer;
    std::optional<WordTokenizer> wordTokenizer;
    nlohmann::json sidecar = nlohmann::json::object();  // model.json of a model folder
    // LoRAs merged into `model` for the current request (made on first use; dropped with the model).
    std::optional<AdapterStack> adapters;
    // A LoRA file as opened once: the adapter and its A1111 short hash, renewed together when it changes.
    struct LoraFile {
        Adapter adapter;
        std::string shortHash;
    };
    FileCache<LoraFile> loraFiles;
    FileCache<TextualInversion> embeddingFiles;

    CLIPTokenizer clipTokenizerFor(const std::filesystem::path& checkpoint) const {
        std::vector<std::filesystem::path> candidates;
        if (!options.clipVocabulary.empty()) candidates.push_back(options.clipVocabulary);
        if (const char* env = std::getenv("EASEL_CLIP_VOCAB"); env != nullptr && *env != '\0')
            candidates.emplace_back(env);
        const auto dir = checkpoint.parent_path();
        candidates.push_back(dir / "bpe_simple_vocab_16e6.txt.gz");
        candidates.push_back(dir.parent_path() / "bpe_simple_vocab_16e6.txt.gz");
        if (std::filesystem::exists(dir / "tokenizer" / "vocab.json")) {
            return CLIPTokenizer::fromVocabAndMerges(dir / "tokenizer" / "vocab.json",
                                                     dir / "tokenizer" / "merges.txt");
        }
        for (const auto& c : candidates) {
            if (std::filesystem::exists(c)) return CLIPTokenizer::fromBpeGz(c);
        }
        throw ModelLoadError(
            "'" + checkpoint.string() +
            "' carries no tokenizer: put the CLIP vocabulary bpe_simple_vocab_16e6.txt.gz beside it or in "
            "the models folder, or name it with --clip-vocab / EASEL_CLIP_VOCAB");
    }
};

Engine::Engine(EngineOptions options) : m_impl(std::make_unique<Impl>()) {
    m_impl->options = std::move(options);
    const int threads =
        m_impl->options.threads > 0 ? m_impl->options.threads : static_cast<int>(std::thread::hardware_concurrency());
    if (threads > 0) torch::set_num_threads(threads);
    if (m_impl->options.device == "cuda") {
        if (!torch::cuda::is_available())
            throw GenerationError("device 'cuda' was asked for, but this libtorch build has no usable CUDA device");
        m_impl->device = torch::Device(torch::kCUDA);
    } else if (m_impl->options.device != "cpu") {
        throw GenerationError("unknown device '" + m_impl->options.device + "' (use cpu or cuda)");
    }
    const auto& tiling = m_impl->options.vaeTiling;
    if (tiling != "auto" && tiling != "always" && tiling != "never") {
        throw GenerationError("unknown VAE tiling '" + tiling + "' (use auto, always or never)");
    }
    // In latent positions of every VAE Easel runs (factor 8, or less) the tile stays larger than the overlap.
    const int side = m_impl->options.vaeTileSide, overlap = m_impl->options.vaeTileOverlap;
    if (side < 16 || side % 8 != 0 || overlap < 0 || overlap % 8 != 0 || 2 * overlap > side) {
        throw GenerationError(
            "VAE tiles need a side of at least 16 pixels and an overlap of at most half of it, both multiples of 8");
    }
    const char* force = std::getenv("EASEL_FORCE_BF16");
    const auto precision = effectivePrecision(m_impl->options.precision, m_impl->device.is_cuda(), cpuHasFastBF16(),
                                              force != nullptr && std::string(force) == "1");
    if (precision != m_impl->options.precision) {
        std::cerr << "easel: this CPU has no AVX-512, where libtorch runs bf16 matmuls on a slow single-threaded "
                     "path: running fp32 instead of bf16 (EASEL_FORCE_BF16=1 keeps bf16)\n";
        m_impl->options.precision = precision;
    }
    if (m_impl->options.precision == "bf16") {
        m_impl->dtype = torch::kBFloat16;
    } else if (m_impl->options.precision == "fp16") {
        // CPU kernels for half are slow or missing in libtorch 1.13; on CUDA it is the usual choice.
        if (!m_impl->device.is_cuda()) throw GenerationError("precision fp16 needs a CUDA device; use bf16 on the CPU");
        m_impl->dtype = torch::kFloat16;
    } else if (m_impl->options.precision != "fp32") {
        throw GenerationError("unknown precision '" + m_impl->options.precision + "' (use fp32, bf16 or fp16)");
    }
}

Engine::~Engine() = default;

bool Engine::hasModel() const { return m_impl->model.has_value(); }
const ModelInfo& Engine::model() const {
    if (!m_impl->model) throw GenerationError("no model is loaded");
    return m_impl->info;
}

void Engine::loadModel(const std::filesystem::path& path) {
    std::lock_guard lock(m_impl->mutex);
    auto& impl = *m_impl;
    ModelInfo info;
    info.path = path;
    info.id = stemOf(path);
    info.name = info.id;
    if (!std::filesystem::exists(path)) throw ModelLoadError("no model at '" + path.string() + "'");
    std::filesystem::path checkpoint = path;
    ModelOverrides overrides;
    std::optional<WordTokenizer> word;
    std::optional<CLIPTokenizer> clip;
    nlohmann::json sidecar = nlohmann::json::object();
    const bool diffusers = isDiffusersFolder(path) && !std::filesystem::exists(path / "model.json");
    if (std::filesystem::is_directory(path) && !diffusers) {
        const auto sidecarPath = path / "model.json";
        if (!std::filesystem::exists(sidecarPath)) throw ModelLoadError("'" + path.string() + "' has no model.json");
        try {
            sidecar = nlohmann::json::parse(std::ifstream(sidecarPath));
        } catch (const nlohmann::json::exception& e) {
            throw ModelLoadError("'" + sidecarPath.string() + "' is not valid JSON: " + e.what());
        }
        try {
            checkpoint = path / sidecar.value("checkpoint", "model.safetensors");
            info.name = sidecar.value("name", info.id);
            info.description = sidecar.value("description", "");
            if (sidecar.contains("unet_num_heads")) overrides.unetNumHeads = sidecar["unet_num_heads"].get<int>();
            if (sidecar.contains("unet_num_head_channels"))
                overrides.unetNumHeadChannels = sidecar["unet_num_head_channels"].get<int>();
            if (sidecar.contains("text_num_heads")) overrides.textNumHeads = sidecar["text_num_heads"].get<int>();
            if (sidecar.contains("text2_num_heads")) overrides.text2NumHeads = sidecar["text2_num_heads"].get<int>();
            if (sidecar.contains("vae_scaling_factor"))
                overrides.vaeScalingFactor = sidecar["vae_scaling_factor"].get<float>();
            if (sidecar.value("prediction_type", "epsilon") == "v_prediction")
                overrides.prediction = PredictionType::VPrediction;
            const auto tok = sidecar.value("tokenizer", nlohmann::json::object());
            if (tok.value("type", "") == "easel-word") {
                word = WordTokenizer::load(path / tok.value("file", "tokenizer.json"));
            }
        } catch (const nlohmann::json::exception& e) {
            throw ModelLoadError("'" + sidecarPath.string() + "' has a field of the wrong type: " + e.what());
        }
    }
    // Built on the CPU in the compute dtype (fp16, CUDA only, is built in float32 and converted on the device).
    const auto buildDtype = impl.dtype == torch::kFloat16 ? torch::kFloat32 : impl.dtype;
    auto model =
        diffusers ? loadDiffusersFolder(path, buildDtype) : loadSingleFileCheckpoint(checkpoint, overrides, buildDtype);
    if (impl.device.is_cuda()) {
        model.unet->to(impl.device, impl.dtype);
        model.vae->to(impl.device, impl.dtype);
        model.textModule->to(impl.device, impl.dtype);
        if (model.textModule2) model.textModule2->to(impl.device, impl.dtype);
    } else {
        useChannelsLast(*model.unet);
        useChannelsLast(*model.vae);
    }
    // A diffusers folder's tokenizer/ wins; clipTokenizerFor looks for it beside the checkpoint.
    if (!word) clip = impl.clipTokenizerFor(diffusers ? path / "model_index.json" : checkpoint);
    const auto& d = model.detected;
    if (info.description.empty()) info.description = d.describe();
    info.inpainting = d.inpainting;
    info.sizeMultiple = d.vae.downsampleFactor();  // the UNet upsamples to its skips' sizes, so any latent size works
    const bool sd2 = d.family == ModelFamily::SD2;
    const bool sdxl = d.family == ModelFamily::SDXL;
    // SDXL is trained at 1024x1024, SD 2.x 768-v at 768x768, the rest at 512x512.
    const int nativeSide = sdxl ? 1024 : sd2 && d.prediction == PredictionType::VPrediction ? 768 : 512;
    try {
        info.defaultWidth = sidecar.value("default_width", nativeSide);
        info.defaultHeight = sidecar.value("default_height", info.defaultWidth);
        // Turbo models (adversarial diffusion distillation) sample in 1-4 steps without guidance.
        const bool turbo = sidecar.value("turbo", false);
        info.defaultSteps = sidecar.value("default_steps", turbo ? 1 : 20);
        info.defaultGuidance = sidecar.value("default_guidance_scale", turbo ? 0.0f : 7.5f);
        info.defaultScheduler =
            sidecar.value("default_scheduler", turbo ? std::string("Euler a") : info.defaultScheduler);
        info.timestepSpacing = sidecar.value("timestep_spacing", turbo ? std::string("trailing") : std::string());
    } catch (const nlohmann::json::exception& e) {
        throw ModelLoadError("'" + path.string() + "/model.json' has a default of the wrong type: " + e.what());
    }
    if (!info.timestepSpacing.empty() && !timestepSpacingOf(info.timestepSpacing)) {
        throw ModelLoadError("'" + path.string() + "/model.json' timestep_spacing '" + info.timestepSpacing +
                             "' is not linspace, leading or trailing");
    }
    // A diffusers folder spaces timesteps as its scheduler config says (SDXL base: "leading", SDXL-Turbo:
    // "trailing"), as diffusers runs it (a diffusers folder has no model.json to say otherwise).
    if (diffusers && info.timestepSpacing.empty()) {
        if (auto spacing = schedulerConfigSpacing(path)) info.timestepSpacing = std::move(*spacing);
    }
    if (const auto bad = checkSchedulerName(info.defaultScheduler))
        throw ModelLoadError("'" + path.string() + "/model.json' default_scheduler: " + *bad);
    info.family = sdxl ? "sdxl" : sd2 ? "sd2" : "sd1";
    // Nothing above changed the engine: a failed load leaves the previous model in place.
    impl.adapters.reset();  // it refers to the old model's weights
    impl.model = std::move(model);
    impl.wordTokenizer = std::move(word);
    impl.clipTokenizer = std::move(clip);
    impl.info = std::move(info);
    impl.sidecar = std::move(sidecar);
}

void Engine::withLoaded(const std::function<void(Loaded&)>& use) {
    std::lock_guard lock(m_impl->mutex);
    auto& impl = *m_impl;
    if (!impl.model) throw GenerationError("no model is loaded");
    // The caller sees (and may change) the base weights: take out a merged LoRA and forget its copies.
    if (impl.adapters) impl.adapters->restore();
    impl.adapters.reset();
    Loaded loaded{*impl.model,
                  impl.info,
                  impl.clipTokenizer ? &*impl.clipTokenizer : nullptr,
                  impl.wordTokenizer ? &*impl.wordTokenizer : nullptr,
                  impl.sidecar,
                  impl.device,
                  impl.dtype};
    use(loaded);
}

AdapterFileInfo Engine::inspectLora(const std::filesystem::path& path) {
    try {
        const auto adapter = Adapter::open(path);
        AdapterFileInfo info;
        info.family = familyName(adapter.base());
        info.description = adapter.formatName() + ", " + std::to_string(adapter.modules().size()) + " modules";
        return info;
    } catch (const AdapterError& e) {
        throw GenerationError(e.what());
    }
}

AdapterFileInfo Engine::inspectEmbedding(const std::filesystem::path& path) {
    const auto ti = loadTextualInversion(path, stemOf(path));
    AdapterFileInfo info;
    if (ti.isSDXL()) {
        info.family = "sdxl";
    } else if (ti.dim() == 768) {
        info.family = "sd1";  // CLIP ViT-L/14
    } else if (ti.dim() == 1024) {
        info.family = "sd2";  // OpenCLIP ViT-H/14
    }
    info.description = "textual inversion (" + embeddingFormatName(ti.format) + "), " +
                       std::to_string(ti.numVectors()) + " vectors of " + std::to_string(ti.dim());
    return info;
}

std::optional<std::string> Engine::checkSchedulerName(const std::string& name) {
    try {
        parseSchedulerName(name);
        return std::nullopt;
    } catch (const std::invalid_argument& e) {
        return std::string(e.what());
    }
}

GenerationResult Engine::generate(const GenerationRequest& r, const ProgressCallback& progress) {
    std::lock_guard lock(m_impl->mutex);
    auto& impl = *m_impl;
    if (!impl.model) throw GenerationError("no model is loaded");
    auto& model = *impl.model;
    const auto& info = impl.info;

    // The request with the model's defaults, every value checked before any work starts.
    ResolvedRequest resolved(r);
    resolved.width = r.width > 0 ? r.width : info.defaultWidth;
    resolved.height = r.height > 0 ? r.height : info.defaultHeight;
    resolved.steps = r.steps > 0 ? r.steps : info.defaultSteps;
    resolved.guidance = r.guidanceScale >= 0 ? r.guidanceScale : info.defaultGuidance;
    resolved.schedulerName = r.scheduler.empty() ? info.defaultScheduler : r.scheduler;
    const int width = resolved.width, height = resolved.height;
    const int m = info.sizeMultiple;
    if (width % m != 0 || height % m != 0 || width < m || height < m || width > kMaxSide || height > kMaxSide) {
        throw GenerationError("width and height must be multiples of " + std::to_string(m) + " between " +
                              std::to_string(m) + " and " + std::to_string(kMaxSide) + " for this model, got " +
                              std::to_string(width) + "x" + std::to_string(height));
    }
    if (!limits::kSamples.contains(r.samples)) throw GenerationError("samples must be " + limits::kSamples.describe());
    if (!limits::kSteps.contains(resolved.steps)) throw GenerationError("steps must be " + limits::kSteps.describe());
    if (!limits::kGuidance.contains(resolved.guidance))
        throw GenerationError("guidance scale must be " + limits::kGuidance.describe());
    if (!limits::kStrength.contains(r.strength))  // NaN too
        throw GenerationError("strength must be " + limits::kStrength.describe());
    const int textLayers = model.detected.text2
                               ? std::min(model.detected.text.numLayers, model.detected.text2->numLayers)
                               : model.detected.text.numLayers;
    if (r.clipSkip < 1 || r.clipSkip > textLayers)
        throw GenerationError("clip_skip must be 1 to " + std::to_string(textLayers));
    for (const auto& [name, field] : SizeConditioning::kFields) {
        if (!limits::kSizeConditioning.contains(r.sizes.*field))
            throw GenerationError("SDXL size conditioning values must be " + limits::kSizeConditioning.describe());
    }
    if (r.mask && !r.initImage) throw GenerationError("a mask needs an init image");
    for (const auto* image : {r.initImage ? &*r.initImage : nullptr, r.mask ? &*r.mask : nullptr}) {
        if (image == nullptr) continue;
        if (image->empty() ||
            image->rgb.size() != static_cast<std::size_t>(image->width) * static_cast<std::size_t>(image->height) * 3) {
            throw GenerationError(std::string(image == &*r.initImage ? "the init image" : "the mask") +
                                  " is empty or malformed");
        }
    }
    if (r.seed && (*r.seed > std::numeric_limits<std::int64_t>::max() - kMaxSamples))
        throw GenerationError("the seed is too large");
    SchedulerChoice choice;
    try {
        choice = parseSchedulerName(resolved.schedulerName);
    } catch (const std::invalid_argument& e) {
        throw GenerationError(e.what());
    }
    resolved.schedulerKind = choice.kind;
    resolved.schedulerConfig.prediction = model.detected.prediction;
    // Karras sigmas from the name or the request's flag; schedulers without them ignore it.
    resolved.schedulerConfig.useKarrasSigmas = r.karras;
    choice.applyTo(resolved.schedulerConfig);
    if (!info.timestepSpacing.empty()) resolved.schedulerConfig.spacing = timestepSpacingOf(info.timestepSpacing);
    if (r.seed && *r.seed >= 0) {
        resolved.seed = *r.seed;
    } else {
        std::random_device rd;
        resolved.seed = static_cast<std::int64_t>(rd() & 0xFFFFFFFFu);
    }

    torch::NoGradGuard noGrad;
    resolved.start = std::chrono::steady_clock::now();
    // LoRAs: the weights become base + this request's set (the base again for none); a file that does
    // not fit the model is refused before any weight changes.
    std::vector<AdapterWeight> loras;
    for (const auto& l : r.loras) {
        if (!std::isfinite(l.textEncoderStrength) || !std::isfinite(l.unetStrength))
            throw GenerationError("the strength of LoRA '" + l.name + "' is not a number");
        std::shared_ptr<const Impl::LoraFile> file;
        try {
            file = impl.loraFiles.get(l.path, [&] {
                return Impl::LoraFile{Adapter::open(l.path), loraShortHash(l.path)};
            });
        } catch (const AdapterError& e) {
            throw GenerationError(e.what());
        }
        // The stack recognises an unchanged set by these objects; they live as long as the cached file.
        loras.push_back({std::shared_ptr<const Adapter>(file, &file->adapter), l.unetStrength, l.textEncoderStrength});
        resolved.loraHashes.emplace_back(l.name, file->shortHash);
        resolved.loraTags.push_back(formatLoraTag({l.name, l.textEncoderStrength, l.unetStrength}));
    }
    try {
        if (!loras.empty() && !impl.adapters) impl.adapters.emplace(model);
        if (impl.adapters) impl.adapters->apply(loras);
    } catch (const AdapterError& e) {
        throw GenerationError("LoRA: " + std::string(e.what()));
    }
    std::vector<TextualInversion> embeddings;
    for (const auto& e : r.embeddings) {
        embeddings.push_back(*impl.embeddingFiles.get(e.path, [&] { return loadTextualInversion(e.path, e.trigger); }));
    }
    const PipelineContext ctx{model,
                              info,
                              impl.device,
                              impl.dtype,
                              impl.clipTokenizer ? &*impl.clipTokenizer : nullptr,
                              impl.wordTokenizer ? &*impl.wordTokenizer : nullptr,
                              &embeddings,
                              impl.options.vaeTiling,
                              impl.options.vaeTileSide,
                              impl.options.vaeTileOverlap};
    if (r.mask) return inpaint(ctx, resolved, progress);
    if (r.initImage) return imageToImage(ctx, resolved, progress);
    return textToImage(ctx, resolved, progress);
}

}  // namespace easel::inference
