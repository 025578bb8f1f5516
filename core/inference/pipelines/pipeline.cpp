#include "inference/pipelines/pipeline.h"

#include <chrono>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/request_limits.h"
#include "inference/pipelines/conditioner.h"
#include "inference/pipelines/denoising_loop.h"
#include "inference/pipelines/sdxl_conditioning.h"

namespace easel::inference {
namespace {

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

// SDXL's latents (scaled by 0.13025) have other statistics: their own map and an offset per colour (the
// factors ComfyUI's SDXL latent format publishes).
const torch::Tensor& sdxlLatentToRgb() {
    static const torch::Tensor m = torch::tensor({0.3651f, 0.4232f, 0.4341f, -0.2533f, -0.0042f, 0.1068f, 0.1076f,
                                                  0.1111f, -0.0362f, -0.3165f, -0.2492f, -0.2188f})
                                       .view({4, 3});
    return m;
}
const torch::Tensor& sdxlLatentRgbBias() {
    static const torch::Tensor b = torch::tensor({0.1084f, -0.0175f, -0.0011f}).view({1, 3, 1, 1});
    return b;
}

// The request's size conditioning, each value defaulting to the image's own size (and no crop).
SizeConditioning sdxlSizesFor(const GenerationRequest& req, int width, int height) {
    auto s = sdxlImageSizes(width, height);
    for (const auto& [name, field] : SizeConditioning::kFields) {
        if (req.sizes.*field > 0) s.*field = req.sizes.*field;
    }
    return s;
}

std::string infotextFor(const PipelineContext& ctx, const ResolvedRequest& r, std::int64_t sampleSeed) {
    const auto& req = r.request;
    Infotext text;
    text.prompt = req.prompt;
    // A1111 keeps the tags in the prompt and names the files by hash, so the PNG says what made it.
    for (const auto& tag : r.loraTags) text.prompt += (text.prompt.empty() ? "" : " ") + tag;
    if (!r.loraHashes.empty()) {
        std::string hashes;
        for (const auto& [name, hash] : r.loraHashes) hashes += (hashes.empty() ? "" : ", ") + name + ": " + hash;
        text.fields["Lora hashes"] = hashes;
    }
    text.negativePrompt = req.negativePrompt;
    text.fields["Steps"] = std::to_string(r.steps);
    // The A1111 spelling of what ran, whichever spelling was asked for, so that A1111 and the desktop
    // app read the sampler back.
    text.fields["Sampler"] = samplerInfotextName(r.schedulerKind, r.schedulerConfig);
    std::ostringstream cfg;
    cfg << r.guidance;
    text.fields["CFG scale"] = cfg.str();
    text.fields["Seed"] = std::to_string(sampleSeed);
    text.fields["Size"] = std::to_string(r.width) + "x" + std::to_string(r.height);
    text.fields["Model"] = ctx.info.name;
    if (r.schedulerConfig.useKarrasSigmas) text.fields["Schedule type"] = "Karras";
    if (req.initImage) {
        std::ostringstream st;
        st << req.strength;
        text.fields["Denoising strength"] = st.str();
    }
    if (req.clipSkip > 1) text.fields["Clip skip"] = std::to_string(req.clipSkip);
    // SDXL's size conditioning, where the request set it (the image's own size and no crop otherwise).
    if (ctx.model.detected.family == ModelFamily::SDXL) {
        const auto& asked = req.sizes;
        const auto used = sdxlSizesFor(req, r.width, r.height);
        const auto pair = [](int a, int b) { return std::to_string(a) + "x" + std::to_string(b); };
        if (asked.originalWidth > 0 || asked.originalHeight > 0)
            text.fields["Original size"] = pair(used.originalWidth, used.originalHeight);
        if (asked.cropTop > 0) text.fields["Crop top"] = std::to_string(used.cropTop);
        if (asked.cropLeft > 0) text.fields["Crop left"] = std::to_string(used.cropLeft);
        if (asked.targetWidth > 0 || asked.targetHeight > 0)
            text.fields["Target size"] = pair(used.targetWidth, used.targetHeight);
    }
    return text.format();
}

}  // namespace

Image latentPreview(const torch::Tensor& latents, ModelFamily family) {
    const bool xl = family == ModelFamily::SDXL;
    auto rgb = torch::einsum("bchw,cr->brhw",
                             {latents.to(torch::kFloat32).to(torch::kCPU), xl ? sdxlLatentToRgb() : sdLatentToRgb()});
    if (xl) rgb = rgb + sdxlLatentRgbBias();
    return tensorToImage(rgb);
}

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

bool wholeDecodeTooLarge(const VAEConfig& vae, std::int64_t pixels, std::int64_t elementBytes,
                         std::uint64_t availableBytes) {
    const auto firstWidth = static_cast<std::uint64_t>(vae.ch) * static_cast<std::uint64_t>(vae.chMult.at(0));
    const auto estimate =
        12u * firstWidth * static_cast<std::uint64_t>(pixels) * static_cast<std::uint64_t>(elementBytes);
    return estimate > availableBytes / 2;
}

std::uint64_t availableMemoryBytes() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    std::string unit;
    while (in >> key >> kib >> unit) {
        if (key == "MemAvailable:") return kib * 1024u;
    }
    return std::numeric_limits<std::uint64_t>::max();
}

torch::Tensor decodeLatents(const PipelineContext& ctx, const torch::Tensor& latents) {
    auto& vae = ctx.model.vae;
    const auto factor = ctx.model.detected.vae.downsampleFactor();
    const auto pixels = latents.size(2) * latents.size(3) * factor * factor;
    const bool tile =
        ctx.vaeTiling == "always" ||
        (ctx.vaeTiling == "auto" && ctx.device.is_cpu() &&
         wholeDecodeTooLarge(ctx.model.detected.vae, pixels, c10::elementSize(ctx.dtype), availableMemoryBytes()));
    if (tile) {
        return vae->decodeTiled(latents.to(ctx.dtype), std::max(1, ctx.vaeTileSide / factor),
                                std::max(0, ctx.vaeTileOverlap / factor));
    }
    return vae->decode(latents.to(ctx.dtype));
}

torch::Tensor encodeLatents(const PipelineContext& ctx, const torch::Tensor& pixels) {
    return ctx.model.vae->encode(pixels.to(ctx.device, ctx.dtype)).mean.to(torch::kFloat32) *
           ctx.model.detected.vae.scalingFactor;
}

void repaintEverything(const PipelineContext& ctx, const ResolvedRequest& r, TaskLatents& task) {
    const int factor = ctx.model.detected.vae.downsampleFactor();
    task.mask = torch::ones({1, 1, r.height / factor, r.width / factor}, torch::TensorOptions().device(ctx.device));
    task.maskedImageLatents = encodeLatents(ctx, torch::zeros({1, 3, r.height, r.width}));
}

GenerationResult runPipeline(const PipelineContext& ctx, const ResolvedRequest& r, const TaskLatents& task,
                             const ProgressCallback& progress) {
    const auto& req = r.request;
    auto& model = ctx.model;
    const auto start = r.start;

    // 1. Conditioning.
    const Conditioner conditioner(model, ctx.clipTokenizer, ctx.wordTokenizer, ctx.device,
                                  ctx.embeddings != nullptr ? *ctx.embeddings : std::vector<TextualInversion>{});
    const auto conditioning =
        conditioner.encode(req.prompt, req.negativePrompt, req.clipSkip, limits::kMaxPromptChunks);

    const int factor = model.detected.vae.downsampleFactor();
    const float scaling = model.detected.vae.scalingFactor;
    const int lh = r.height / factor, lw = r.width / factor;
    GenerationResult result;
    auto scheduler = makeScheduler(r.schedulerKind, r.schedulerConfig);
    for (int s = 0; s < req.samples; ++s) {
        // 2. The sample's noise, from a CPU generator seeded with seed + s, so that a seed gives the
        // same image on any device.
        const std::int64_t sampleSeed = r.seed + s;
        auto generator = torch::make_generator<torch::CPUGeneratorImpl>(static_cast<std::uint64_t>(sampleSeed));
        DenoiseInputs in;
        in.cond = conditioning.cond;
        in.uncond = conditioning.uncond;
        if (model.detected.family == ModelFamily::SDXL) {
            const auto sizes = sdxlSizesFor(req, r.width, r.height);
            in.condY = sdxlVector(conditioning.condPooled, sizes, model.detected.sizeEmbeddingDim).to(ctx.device);
            in.uncondY = sdxlVector(conditioning.uncondPooled, sizes, model.detected.sizeEmbeddingDim).to(ctx.device);
        }
        in.noise =
            torch::randn({1, model.detected.unet.outChannels, lh, lw}, generator, torch::kFloat32).to(ctx.device);
        in.guidanceScale = r.guidance;
        in.numInferenceSteps = r.steps;
        in.ancestralNoise = [&](const torch::Tensor& like, int) {
            return torch::randn(like.sizes(), generator, torch::kFloat32).to(like.device());
        };
        if (task.initLatents.defined()) {
            in.initLatents = task.initLatents;
            in.strength = task.strength;
            in.pureNoiseAtFullStrength = task.pureNoiseAtFullStrength;
        }
        in.mask = task.mask;
        in.maskedImageLatents = task.maskedImageLatents;

        // 3. The denoising loop, reporting each step with an optional preview.
        Image preview;
        in.callback = [&](const StepProgress& p) {
            if (!progress) return true;
            GenerationProgress g;
            g.step = p.step;
            g.total = p.total;
            g.sample = s;
            g.elapsedSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (req.previewEvery > 0 && p.predictedLatents != nullptr &&
                (p.step % req.previewEvery == 0 || p.step == p.total)) {
                const auto& x0 = *p.predictedLatents;
                if (x0.size(2) * x0.size(3) <= kMaxDecodedPreviewLatents) {
                    // Small latents (Easel's built-in model): the VAE itself, a few milliseconds.
                    preview = tensorToImage(model.vae->decode((x0 / scaling).to(ctx.dtype)));
                    g.preview = &preview;
                } else if (x0.size(1) == 4) {
                    // SD's 4-channel latents: a fixed linear map to RGB at latent resolution, the "cheap"
                    // preview of the web UIs, instead of a decode that costs seconds per step on a CPU.
                    preview = latentPreview(x0, model.detected.family);
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

        // 4. Decode; inpainting returns the caller's pixels exactly outside the mask (the VAE round
        // trip would blur them).
        auto pixels = decodeLatents(ctx, latents / scaling).to(torch::kFloat32).to(torch::kCPU);
        if (task.maskPixels.defined()) pixels = task.maskPixels * pixels + (1.0f - task.maskPixels) * task.initPixels;
        result.images.push_back(tensorToImage(pixels));
        result.seeds.push_back(sampleSeed);

        // 5. The A1111 parameters text.
        result.infotexts.push_back(infotextFor(ctx, r, sampleSeed));
    }
    result.scheduler = r.schedulerName;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

}  // namespace easel::inference
