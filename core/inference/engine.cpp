#include "inference/engine.h"

#include "inference/runtime_info.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "inference/loading/checkpoint_loader.h"
#include "inference/loading/diffusers_loader.h"
#include "inference/pipelines/denoising_loop.h"
#include "inference/schedulers/scheduler.h"
#include "inference/tensor_utils.h"
#include "inference/tokenizer/clip_tokenizer.h"
#include "inference/tokenizer/prompt_parser.h"
#include "inference/tokenizer/word_tokenizer.h"

namespace easel::inference {
namespace {

constexpr int kMaxSamples = 4;
constexpr int kMaxSteps = 150;
constexpr int kMaxSide = 2048;
constexpr int kMaxPromptChunks = 8;  // 600 tokens; each chunk adds 77 context tokens to every cross-attention

// Text -> one or more 77-token chunks with per-token weights.
struct Tokenized {
    std::vector<std::vector<int>> chunks;
    std::vector<std::vector<float>> weights;
};

torch::Tensor imageToTensor(const Image& image) {
    auto t =
        torch::from_blob(const_cast<std::uint8_t*>(image.rgb.data()), {image.height, image.width, 3}, torch::kUInt8);
    return t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div(127.5).sub(1.0);
}

Image tensorToImage(const torch::Tensor& decoded) {
    auto u8 = ((decoded.to(torch::kFloat32).to(torch::kCPU) / 2 + 0.5).clamp(0, 1) * 255).round().to(torch::kUInt8);
    u8 = u8.squeeze(0).permute({1, 2, 0}).contiguous();
    Image out;
    out.height = static_cast<int>(u8.size(0));
    out.width = static_cast<int>(u8.size(1));
    out.rgb.assign(u8.data_ptr<std::uint8_t>(), u8.data_ptr<std::uint8_t>() + u8.numel());
    return out;
}

// Latents up to this many positions are decoded by the VAE for previews (32x32 = a 256x256 image).
constexpr std::int64_t kMaxDecodedPreviewLatents = 32 * 32;

// SD 1.x/2.x latents (already multiplied by the scaling factor) to approximate RGB in [-1, 1]: one row
// per latent channel (the widely used "cheap approximation" coefficients).
const torch::Tensor& sdLatentToRgb() {
    static const torch::Tensor m = torch::tensor({0.298f, 0.207f, 0.208f, 0.187f, 0.286f, 0.173f, -0.158f, 0.189f,
                                                  0.264f, -0.184f, -0.271f, -0.473f})
                                       .view({4, 3});
    return m;
}

std::string stemOf(const std::filesystem::path& p) {
    return std::filesystem::is_directory(p) ? p.filename().string() : p.stem().string();
}

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

    Tokenized tokenize(const std::string& text) const {
        Tokenized t;
        if (wordTokenizer) {
            t.chunks.push_back(wordTokenizer->encodePadded(text, model->detected.text.maxPositions));
            t.weights.emplace_back(t.chunks.back().size(), 1.0f);
            return t;
        }
        // SD 2.x (OpenCLIP, also as a diffusers CLIPTextModel) pads with 0, SD 1.x with EOS.
        const int pad = model->detected.family == ModelFamily::SD2 ? 0 : clipTokenizer->eosId();
        auto w = tokenizeWeighted(*clipTokenizer, text, pad);
        t.chunks = std::move(w.chunks);
        t.weights = std::move(w.weights);
        return t;
    }

    // Encodes each chunk, applies the A1111 emphasis (scale the hidden states by the weights, then
    // restore the original mean) and concatenates the chunks along the token axis.
    torch::Tensor encode(const Tokenized& t, int chunks, int clipSkip) {
        std::vector<torch::Tensor> parts;
        std::optional<Tokenized> empty;  // padding chunks, only when the other prompt is longer
        for (int c = 0; c < chunks; ++c) {
            const bool real = c < static_cast<int>(t.chunks.size());
            if (!real && !empty) empty = tokenize("");
            const auto& ids = real ? t.chunks[static_cast<std::size_t>(c)] : empty->chunks[0];
            const auto& weights = real ? t.weights[static_cast<std::size_t>(c)] : empty->weights[0];
            for (int id : ids) {
                if (id < 0 || id >= model->detected.text.vocabSize) {
                    throw GenerationError("the prompt's token " + std::to_string(id) +
                                          " is outside the text encoder's vocabulary of " +
                                          std::to_string(model->detected.text.vocabSize));
                }
            }
            auto idTensor =
                torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0).to(device);
            auto z = model->textEncoder->encode(idTensor, clipSkip).hidden.to(torch::kFloat32);
            const bool weighted = std::any_of(weights.begin(), weights.end(), [](float w) { return w != 1.0f; });
            if (weighted) {
                const auto originalMean = z.mean();
                z = z * torch::tensor(weights).to(device).view({1, -1, 1});
                z = z * (originalMean / z.mean());
            }
            parts.push_back(z);
        }
        return torch::cat(parts, 1);
    }

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
    if (m_impl->options.precision == "bf16") {
        m_impl->dtype = torch::kBFloat16;
        if (!m_impl->device.is_cuda() && !cpuHasFastBF16()) {
            std::cerr << "easel: warning: this CPU has no AVX-512, so libtorch runs bf16 matmuls on a slow "
                         "single-threaded path; --precision fp32 is much faster here\n";
        }
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
    try {
        info.defaultWidth =
            sidecar.value("default_width", sd2 && d.prediction == PredictionType::VPrediction ? 768 : 512);
        info.defaultHeight = sidecar.value("default_height", info.defaultWidth);
        info.defaultSteps = sidecar.value("default_steps", 20);
        info.defaultGuidance = sidecar.value("default_guidance_scale", 7.5f);
        info.defaultScheduler = sidecar.value("default_scheduler", info.defaultScheduler);
    } catch (const nlohmann::json::exception& e) {
        throw ModelLoadError("'" + path.string() + "/model.json' has a default of the wrong type: " + e.what());
    }
    if (const auto bad = checkSchedulerName(info.defaultScheduler))
        throw ModelLoadError("'" + path.string() + "/model.json' default_scheduler: " + *bad);
    // Nothing above changed the engine: a failed load leaves the previous model in place.
    impl.model = std::move(model);
    impl.wordTokenizer = std::move(word);
    impl.clipTokenizer = std::move(clip);
    impl.info = std::move(info);
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

    const int width = r.width > 0 ? r.width : info.defaultWidth;
    const int height = r.height > 0 ? r.height : info.defaultHeight;
    const int steps = r.steps > 0 ? r.steps : info.defaultSteps;
    const float guidance = r.guidanceScale >= 0 ? r.guidanceScale : info.defaultGuidance;
    const std::string schedulerName = r.scheduler.empty() ? info.defaultScheduler : r.scheduler;
    const int m = info.sizeMultiple;
    if (width % m != 0 || height % m != 0 || width < m || height < m || width > kMaxSide || height > kMaxSide) {
        throw GenerationError("width and height must be multiples of " + std::to_string(m) + " between " +
                              std::to_string(m) + " and " + std::to_string(kMaxSide) + " for this model, got " +
                              std::to_string(width) + "x" + std::to_string(height));
    }
    if (r.samples < 1 || r.samples > kMaxSamples)
        throw GenerationError("samples must be 1 to " + std::to_string(kMaxSamples));
    if (steps < 1 || steps > kMaxSteps) throw GenerationError("steps must be 1 to " + std::to_string(kMaxSteps));
    if (guidance < 0 || guidance > 30) throw GenerationError("guidance scale must be 0 to 30");
    if (!(r.strength >= 0 && r.strength <= 1)) throw GenerationError("strength must be between 0 and 1");  // NaN too
    if (r.clipSkip < 1 || r.clipSkip > model.detected.text.numLayers)
        throw GenerationError("clip_skip must be 1 to " + std::to_string(model.detected.text.numLayers));
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
        choice = parseSchedulerName(schedulerName);
    } catch (const std::invalid_argument& e) {
        throw GenerationError(e.what());
    }
    SchedulerConfig schedulerConfig;
    schedulerConfig.prediction = model.detected.prediction;
    // Only the sigma-space samplers have a Karras schedule; the others ignore the flag.
    const bool karrasCapable = choice.kind == SchedulerKind::Euler || choice.kind == SchedulerKind::DPMPP2M ||
                               choice.kind == SchedulerKind::Heun;
    schedulerConfig.useKarrasSigmas = karrasCapable && (choice.karras || r.karras);

    torch::NoGradGuard noGrad;
    const auto start = std::chrono::steady_clock::now();
    const auto cond = impl.tokenize(r.prompt);
    const auto uncond = impl.tokenize(r.negativePrompt);
    const int chunks = static_cast<int>(std::max(cond.chunks.size(), uncond.chunks.size()));
    if (chunks > kMaxPromptChunks) {
        throw GenerationError("the prompt is too long: at most " + std::to_string(kMaxPromptChunks * 75) + " tokens");
    }
    const auto condHidden = impl.encode(cond, chunks, r.clipSkip);
    const auto uncondHidden = impl.encode(uncond, chunks, r.clipSkip);

    const int factor = model.detected.vae.downsampleFactor();
    const float scaling = model.detected.vae.scalingFactor;
    const int lh = height / factor, lw = width / factor;
    torch::Tensor initLatents, maskLatent, maskedImageLatents, initPixels, maskPixels;
    auto vaeEncode = [&](const torch::Tensor& pixels) {
        return model.vae->encode(pixels.to(impl.device, impl.dtype)).mean.to(torch::kFloat32) * scaling;
    };
    if (r.initImage) {
        initPixels = imageToTensor(resizeImage(*r.initImage, width, height));
        initLatents = vaeEncode(initPixels);
    }
    if (r.mask) {
        const auto maskImage = resizeImage(*r.mask, width, height);
        maskPixels =
            (imageToTensor(maskImage).mean(1, true) > 0.0).to(torch::kFloat32);  // white (> mid grey) = repaint
        maskLatent = torch::nn::functional::interpolate(maskPixels, torch::nn::functional::InterpolateFuncOptions()
                                                                        .size(std::vector<int64_t>{lh, lw})
                                                                        .mode(torch::kNearest))
                         .to(impl.device);
        if (info.inpainting) maskedImageLatents = vaeEncode(initPixels * (maskPixels < 0.5).to(torch::kFloat32));
    }

    if (info.inpainting && !r.mask) {
        // A 9-channel model without a mask: repaint everything (mask of ones, masked image zero).
        maskLatent = torch::ones({1, 1, lh, lw}, torch::TensorOptions().device(impl.device));
        maskedImageLatents = vaeEncode(torch::zeros({1, 3, height, width}));
    }

    std::int64_t seed = 0;
    if (r.seed && *r.seed >= 0) {
        seed = *r.seed;
    } else {
        std::random_device rd;
        seed = static_cast<std::int64_t>(rd() & 0xFFFFFFFFu);
    }

    GenerationResult result;
    auto scheduler = makeScheduler(choice.kind, schedulerConfig);
    for (int s = 0; s < r.samples; ++s) {
        const std::int64_t sampleSeed = seed + s;
        auto generator = torch::make_generator<torch::CPUGeneratorImpl>(static_cast<std::uint64_t>(sampleSeed));
        DenoiseInputs in;
        in.cond = condHidden;
        in.uncond = uncondHidden;
        in.noise =
            torch::randn({1, model.detected.unet.outChannels, lh, lw}, generator, torch::kFloat32).to(impl.device);
        in.guidanceScale = guidance;
        in.numInferenceSteps = steps;
        in.ancestralNoise = [&](const torch::Tensor& like, int) {
            return torch::randn(like.sizes(), generator, torch::kFloat32).to(like.device());
        };
        if (r.initImage) {
            in.initLatents = initLatents;
            in.strength = r.strength;
            in.pureNoiseAtFullStrength = r.mask.has_value();
        }
        in.mask = maskLatent;
        in.maskedImageLatents = maskedImageLatents;
        Image preview;
        in.callback = [&](const StepProgress& p) {
            if (!progress) return true;
            GenerationProgress g;
            g.step = p.step;
            g.total = p.total;
            g.sample = s;
            g.elapsedSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (r.previewEvery > 0 && p.predictedLatents != nullptr &&
                (p.step % r.previewEvery == 0 || p.step == p.total)) {
                const auto& x0 = *p.predictedLatents;
                if (x0.size(2) * x0.size(3) <= kMaxDecodedPreviewLatents) {
                    // Small latents (Easel's built-in model): the VAE itself, a few milliseconds.
                    preview = tensorToImage(model.vae->decode((x0 / scaling).to(impl.dtype)));
                    g.preview = &preview;
                } else if (x0.size(1) == 4) {
                    // SD's 4-channel latents: a fixed linear map to RGB at latent resolution, the "cheap"
                    // preview of the web UIs, instead of a decode that costs seconds per step on a CPU.
                    const auto rgb =
                        torch::einsum("bchw,cr->brhw", {x0.to(torch::kFloat32).to(torch::kCPU), sdLatentToRgb()});
                    preview = tensorToImage(rgb);
                    g.preview = &preview;
                }
            }
            return progress(g);
        };
        torch::Tensor latents;
        try {
            latents = denoise(model.unet, *scheduler, in);
        } catch (const GenerationCancelled&) {
            throw GenerationCancelledError();
        }
        auto pixels = model.vae->decode((latents / scaling).to(impl.dtype)).to(torch::kFloat32).to(torch::kCPU);
        if (r.mask) {
            // Outside the mask, return the caller's pixels exactly (the VAE round trip would blur them).
            pixels = maskPixels * pixels + (1.0f - maskPixels) * initPixels;
        }
        result.images.push_back(tensorToImage(pixels));
        result.seeds.push_back(sampleSeed);
        Infotext text;
        text.prompt = r.prompt;
        text.negativePrompt = r.negativePrompt;
        text.fields["Steps"] = std::to_string(steps);
        text.fields["Sampler"] = schedulerName;
        std::ostringstream cfg;
        cfg << guidance;
        text.fields["CFG scale"] = cfg.str();
        text.fields["Seed"] = std::to_string(sampleSeed);
        text.fields["Size"] = std::to_string(width) + "x" + std::to_string(height);
        text.fields["Model"] = info.name;
        if (schedulerConfig.useKarrasSigmas) text.fields["Schedule type"] = "Karras";
        if (r.initImage) {
            std::ostringstream st;
            st << r.strength;
            text.fields["Denoising strength"] = st.str();
        }
        if (r.clipSkip > 1) text.fields["Clip skip"] = std::to_string(r.clipSkip);
        result.infotexts.push_back(text.format());
    }
    result.scheduler = schedulerName;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

}  // namespace easel::inference
