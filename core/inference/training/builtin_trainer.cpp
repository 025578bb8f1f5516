#include "inference/training/builtin_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "inference/loading/checkpoint_writer.h"
#include "inference/tokenizer/word_tokenizer.h"
#include "inference/training/shapes_dataset.h"
#include "inference/training/training_utils.h"

namespace easel::inference::training {
namespace {

constexpr int kContextLength = 77;

UNetConfig builtinUNet() {
    UNetConfig c;
    c.inChannels = 8;  // the autoencoder's 8 latent channels
    c.outChannels = 8;
    c.modelChannels = 32;  // 32/64/64 channels: ~1 s per batch-64 step on 2 cores
    c.channelMult = {1, 2, 2};
    c.numResBlocks = 1;
    c.attentionLevels = {1, 2};  // 8x8 and 4x4: self-attention over 16x16 cost more than the rest
    c.numHeads = 4;              // recorded in model.json (SD 1.x files imply 8)
    c.numHeadChannels = -1;
    c.transformerDepth = {1, 1, 1};
    c.contextDim = 128;
    return c;
}

VAEConfig builtinVAE() {
    VAEConfig c;
    c.ch = 32;
    c.chMult = {1, 2, 2};  // 64x64 pixels -> 16x16x8 latents
    c.numResBlocks = 1;
    // 8 latent channels, not SD's 4: with 4 the small autoencoder rounded square corners and shifted
    // red toward orange; the UNet's cost hardly changes (only its first and last convolutions).
    c.zChannels = 8;
    c.embedDim = 8;
    return c;
}

TextEncoderConfig builtinText(int vocabSize) {
    TextEncoderConfig c;
    c.kind = TextEncoderKind::CLIP;
    c.vocabSize = vocabSize;
    c.hiddenSize = 128;
    c.intermediateSize = 512;
    c.numLayers = 2;
    c.numHeads = 2;  // hidden / 64, the detection default
    c.maxPositions = kContextLength;
    c.quickGELU = true;
    return c;
}

std::vector<std::string> vocabularyWords() {
    std::vector<std::string> words{"a",   "and",    "on",  "background", "in",   "at",
                                   "the", "center", "top", "bottom",     "left", "right"};
    for (const auto& c : kShapeColors) words.emplace_back(c.name);
    for (const auto& c : kBackgrounds) words.emplace_back(c.name);
    for (auto k : {ShapeKind::Circle, ShapeKind::Square, ShapeKind::Triangle, ShapeKind::Star})
        words.push_back(shapeName(k));
    for (auto s : {ShapeSize::Small, ShapeSize::Large}) words.push_back(sizeName(s));
    return words;
}

// Scene images as a float tensor in [-1, 1], [N, 3, S, S]; optionally each scene's caption and
// background index.
torch::Tensor renderBatch(std::uint64_t seed, std::uint64_t first, int count, int size,
                          std::vector<std::string>* captions, std::vector<int>* backgrounds = nullptr) {
    auto out = torch::empty({count, 3, size, size});
    for (int i = 0; i < count; ++i) {
        const auto scene = sampleScene(seed, first + static_cast<std::uint64_t>(i));
        const cv::Mat img = renderScene(scene, size);
        auto t = torch::from_blob(img.data, {size, size, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat32);
        out[i] = t / 127.5 - 1.0;
        if (captions != nullptr) captions->push_back(scene.caption());
        if (backgrounds != nullptr) backgrounds->push_back(scene.background);
    }
    return out;
}

// Per-pixel weights [N, 1, S, S]: 1 on the plain background, `shapeWeight` on the shapes and their
// anti-aliased rims. A small shape covers 7% of the image, so an unweighted loss spends the
// autoencoder's capacity on flat background; on gray, where shapes contrast least, the first models
// then blurred corners and shifted colours (yellow came back orange).
torch::Tensor shapeWeights(const torch::Tensor& images, const std::vector<int>& backgrounds, double shapeWeight) {
    std::vector<float> rgb;
    for (int b : backgrounds) {
        for (auto c : kBackgrounds[static_cast<std::size_t>(b)].rgb)
            rgb.push_back(static_cast<float>(c) / 127.5f - 1.0f);
    }
    const auto bg = torch::tensor(rgb).view({-1, 3, 1, 1});
    const auto onShape = ((images - bg).abs().amax(1, true) > 0.04).to(torch::kFloat32);
    return 1.0 + (shapeWeight - 1.0) * onShape;
}

// Linear warm-up, then cosine decay to 1% of the peak: the constant rate left the first models
// with grainy backgrounds and drifting colours.
double scheduledRate(double peak, int step, int total, int warmup) {
    if (step < warmup) return peak * (step + 1) / warmup;
    const double progress = static_cast<double>(step - warmup) / std::max(1, total - warmup);
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + std::cos(3.14159265358979 * std::min(1.0, progress))));
}

void setRate(torch::optim::Optimizer& opt, double rate) {
    for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(rate);
}

std::string formatEta(double seconds) {
    std::ostringstream s;
    const int total = static_cast<int>(seconds);
    s << total / 3600 << "h" << std::setw(2) << std::setfill('0') << (total / 60) % 60 << "m" << std::setw(2)
      << total % 60 << "s";
    return s.str();
}

class Progress {
public:
    Progress(std::string stage, int total, int startStep, const std::function<void(const std::string&)>& log)
        : m_stage(std::move(stage)),
          m_total(total),
          m_start(startStep),
          m_log(log),
          m_t0(std::chrono::steady_clock::now()) {}
    void report(int step, double loss) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_t0).count();
        const int done = step - m_start;
        const double perStep = done > 0 ? elapsed / done : 0;
        std::ostringstream s;
        s << m_stage << " step " << step << "/" << m_total << " loss " << std::setprecision(4) << loss << " ("
          << std::setprecision(3) << perStep << " s/step, ETA " << formatEta(perStep * (m_total - step)) << ")";
        m_log(s.str());
    }

private:
    std::string m_stage;
    int m_total, m_start;
    const std::function<void(const std::string&)>& m_log;
    std::chrono::steady_clock::time_point m_t0;
};

// L1 between the horizontal and vertical pixel differences of two images. Flat background dominates a
// plain pixel loss, so without this the autoencoder rounded the corners and star points of small
// shapes (the detector then read a square or a star as a circle).
torch::Tensor edgeLoss(const torch::Tensor& a, const torch::Tensor& b) {
    using torch::indexing::None;
    using torch::indexing::Slice;
    auto dx = [](const torch::Tensor& t) {
        return t.index({Slice(), Slice(), Slice(), Slice(1, None)}) -
               t.index({Slice(), Slice(), Slice(), Slice(None, -1)});
    };
    auto dy = [](const torch::Tensor& t) {
        return t.index({Slice(), Slice(), Slice(1, None)}) - t.index({Slice(), Slice(), Slice(None, -1)});
    };
    return (dx(a) - dx(b)).abs().mean() + (dy(a) - dy(b)).abs().mean();
}

void trainVAE(const BuiltinTrainingOptions& o, AutoencoderKL& vae, const std::function<void(const std::string&)>& log) {
    const auto ckpt = o.workDir / "vae.pt";
    auto params = vae->parameters();
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-3).weight_decay(0.0));
    int step = loadTrainingState(ckpt, *vae, opt);
    if (step >= o.vaeSteps || (o.exportOnly && step > 0)) {
        log("vae: already trained (" + std::to_string(step) + " steps)");
        return;
    }
    vae->train();
    Progress progress("vae", o.vaeSteps, step, log);
    double avg = 0;
    for (; step < o.vaeSteps; ++step) {
        // A separate seed stream from the UNet data set; every step sees fresh scenes.
        std::vector<int> backgrounds;
        const auto images = renderBatch(o.seed + 7, static_cast<std::uint64_t>(step) * o.vaeBatch, o.vaeBatch,
                                        o.imageSize, nullptr, &backgrounds);
        const auto weights = shapeWeights(images, backgrounds, o.vaeShapeWeight);
        setRate(opt, scheduledRate(1e-3, step, o.vaeSteps, 100));
        const auto dist = vae->encode(images);
        const auto z = dist.mean + dist.std * torch::randn_like(dist.std);
        const auto recon = vae->decode(z);
        const auto diff = recon - images;
        const auto rec = (weights * diff.abs()).mean() + (weights * diff.pow(2)).mean() + edgeLoss(recon, images);
        const auto kl = 0.5 * (dist.mean.pow(2) + dist.std.pow(2) - 1.0 - dist.logvar).mean();
        // A light KL term (as in SD's autoencoder): reconstruction fidelity first, the latents' spread is
        // normalised afterwards by the scaling factor.
        const auto loss = rec + 1e-6 * kl;
        opt.zero_grad();
        loss.backward();
        torch::nn::utils::clip_grad_norm_(params, 1.0);
        opt.step();
        avg = step == 0 ? loss.item<double>() : 0.98 * avg + 0.02 * loss.item<double>();
        if ((step + 1) % 50 == 0) progress.report(step + 1, avg);
        if ((step + 1) % o.checkpointEvery == 0) saveTrainingState(ckpt, *vae, opt, step + 1);
    }
    saveTrainingState(ckpt, *vae, opt, step);
}

// The autoencoder's round trip on scenes it never saw, in 8-bit levels: the UNet cannot draw better
// than this, so it is printed before the long stage starts.
void reportRoundTrip(const BuiltinTrainingOptions& o, AutoencoderKL& vae,
                     const std::function<void(const std::string&)>& log) {
    torch::NoGradGuard noGrad;
    std::vector<int> backgrounds;
    const auto images = renderBatch(o.seed + 99, 1u << 30, 96, o.imageSize, nullptr, &backgrounds);
    const auto recon = vae->decode(vae->encode(images).mean).clamp(-1, 1);
    const auto diff = ((recon - images) * 127.5).abs();
    const auto rank = static_cast<int64_t>(0.99 * static_cast<double>(diff.numel()));
    const double p99 = std::get<0>(diff.flatten().kthvalue(rank)).item<double>();
    std::ostringstream s;
    s << std::setprecision(3) << "vae round trip on 96 unseen scenes: mean error " << diff.mean().item<double>()
      << " levels, 99th percentile " << p99 << " levels; on shapes, by background:";
    // The error on shape pixels alone, per background: the flat background hides it in the mean.
    const auto onShape = shapeWeights(images, backgrounds, 2.0) - 1.0;
    for (std::size_t b = 0; b < kBackgrounds.size(); ++b) {
        std::vector<int64_t> rows;
        for (std::size_t i = 0; i < backgrounds.size(); ++i) {
            if (backgrounds[i] == static_cast<int>(b)) rows.push_back(static_cast<int64_t>(i));
        }
        if (rows.empty()) continue;
        const auto idx = torch::tensor(rows);
        const auto mask = onShape.index_select(0, idx);
        const auto err = (diff.index_select(0, idx) * mask).sum() / (3.0 * mask.sum()).clamp_min(1.0);
        s << " " << kBackgrounds[b].name << " " << err.item<double>();
    }
    log(s.str());
}

}  // namespace

void trainBuiltinModel(const BuiltinTrainingOptions& o, const std::function<void(const std::string&)>& log) {
    // libtorch may start with one thread; 0 means every core.
    torch::set_num_threads(o.threads > 0 ? o.threads
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    std::filesystem::create_directories(o.workDir);
    std::filesystem::create_directories(o.outputDir);
    torch::manual_seed(o.seed);

    const auto tokenizer = WordTokenizer::fromWords(vocabularyWords());
    StableDiffusionModel model;
    model.detected.family = ModelFamily::SD1;
    model.detected.unet = builtinUNet();
    model.detected.vae = builtinVAE();
    model.detected.text = builtinText(tokenizer.vocabSize());
    model.detected.textPrefix = "cond_stage_model.transformer.";
    model.unet = UNet2DConditionModel(model.detected.unet);
    model.vae = AutoencoderKL(model.detected.vae);
    model.textEncoder = makeTextEncoder(model.detected.text, model.textModule);

    // Stage 1: the autoencoder.
    trainVAE(o, model.vae, log);
    model.vae->eval();
    reportRoundTrip(o, model.vae, log);
    for (auto& p : model.vae->parameters()) p.set_requires_grad(false);

    // Stage 2: encode a fixed data set once; the latents' spread gives the scaling factor, as for SD.
    const auto latentsPath = o.workDir / "latents.pt";
    torch::Tensor latents;
    std::vector<std::string> captions;
    {
        torch::NoGradGuard noGrad;
        std::vector<torch::Tensor> chunks;
        const int chunk = 256;
        for (int first = 0; first < o.datasetSize; first += chunk) {
            const int n = std::min(chunk, o.datasetSize - first);
            const auto images = renderBatch(o.seed, static_cast<std::uint64_t>(first), n, o.imageSize, &captions);
            if (!std::filesystem::exists(latentsPath)) chunks.push_back(model.vae->encode(images).mean);
        }
        if (std::filesystem::exists(latentsPath)) {
            torch::load(latents, latentsPath.string());
        } else {
            latents = torch::cat(chunks);
            torch::save(latents, latentsPath.string());
        }
    }
    const float scaling = static_cast<float>(1.0 / latents.std().item<double>());
    model.detected.vae.scalingFactor = scaling;
    log("dataset: " + std::to_string(latents.size(0)) + " scenes, latent scaling factor " + std::to_string(scaling));
    latents = latents * scaling;
    std::vector<torch::Tensor> idRows;
    for (const auto& c : captions)
        idRows.push_back(torch::tensor(tokenizer.encodePadded(c, kContextLength), torch::kLong));
    const auto ids = torch::stack(idRows);
    const auto emptyIds = torch::tensor(tokenizer.encodePadded("", kContextLength), torch::kLong);

    // Stage 3: UNet + text encoder.
    auto& textModule = *model.textModule;
    std::vector<torch::Tensor> params = model.unet->parameters();
    for (auto& p : textModule.parameters()) params.push_back(p);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.unetLearningRate).weight_decay(0.01));
    ExponentialMovingAverage ema(params, o.emaDecay);
    const auto ckpt = o.workDir / "unet.pt";
    int step = loadTrainingState(ckpt, model, opt, &ema);
    const int lastStep = o.exportOnly ? step : o.unetSteps;
    if (o.exportOnly) log("exporting the EMA weights of step " + std::to_string(step));
    SchedulerConfig sched;  // the SD noise schedule, so that every Easel sampler applies
    const auto alphas = makeScheduler(SchedulerKind::DDIM, sched)->alphasCumprod();
    model.unet->train();
    textModule.train();
    Progress progress("unet", o.unetSteps, step, log);
    double avg = 0;
    for (; step < lastStep; ++step) {
        const auto idx = torch::randint(latents.size(0), {o.unetBatch}, torch::kLong);
        const auto x0 = latents.index_select(0, idx);
        auto batchIds = ids.index_select(0, idx);
        const auto drop = torch::rand({o.unetBatch}) < o.captionDropout;
        batchIds = torch::where(drop.unsqueeze(1), emptyIds.unsqueeze(0).expand_as(batchIds), batchIds);
        const auto t = torch::randint(sched.numTrainTimesteps, {o.unetBatch}, torch::kLong);
        const auto a = alphas.index_select(0, t).view({-1, 1, 1, 1});
        auto noise = torch::randn_like(x0);
        if (o.offsetNoise > 0) noise = noise + o.offsetNoise * torch::randn({x0.size(0), x0.size(1), 1, 1});
        const auto noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise;
        setRate(opt, scheduledRate(o.unetLearningRate, step, o.unetSteps, 200));
        const auto context = model.textEncoder->encode(batchIds, 1).hidden;
        const auto pred = model.unet->forward(noisy, t.to(torch::kFloat32), context);
        // Min-SNR-gamma weighting (Hang et al. 2023): for epsilon prediction, per-sample weight
        // min(SNR, gamma) / SNR. Low-noise steps, whose loss is easy and whose gradients fight the
        // high-noise ones that decide the layout and the shape, count for less.
        auto perSample = (pred - noise).pow(2).mean({1, 2, 3});
        if (o.minSnrGamma > 0) {
            const auto snr = (a / (1 - a)).view({-1});
            perSample = perSample * torch::clamp_max(snr, o.minSnrGamma) / snr;
        }
        const auto loss = perSample.mean();
        opt.zero_grad();
        loss.backward();
        torch::nn::utils::clip_grad_norm_(params, 1.0);
        opt.step();
        ema.update(params);
        avg = step == 0 ? loss.item<double>() : 0.98 * avg + 0.02 * loss.item<double>();
        if ((step + 1) % 25 == 0) progress.report(step + 1, avg);
        if ((step + 1) % o.checkpointEvery == 0) saveTrainingState(ckpt, model, opt, step + 1, &ema);
    }
    if (!o.exportOnly) saveTrainingState(ckpt, model, opt, step, &ema);

    // Export the EMA weights in fp16 with the sidecar and tokenizer.
    ema.copyTo(params);
    model.unet->eval();
    textModule.eval();
    saveSingleFileCheckpoint(model, o.outputDir / "model.safetensors", DType::F16,
                             {{"easel.model", "easel-shapes-64"}});
    tokenizer.save(o.outputDir / "tokenizer.json");
    nlohmann::json sidecar{
        {"format", "easel-model"},
        {"name", "easel-shapes-64"},
        {"description", "Easel's built-in model: simple shapes in named colours and positions, 64x64"},
        {"checkpoint", "model.safetensors"},
        {"tokenizer", {{"type", "easel-word"}, {"file", "tokenizer.json"}}},
        {"unet_num_heads", model.detected.unet.numHeads},
        {"text_num_heads", model.detected.text.numHeads},
        {"prediction_type", "epsilon"},
        {"vae_scaling_factor", scaling},
        {"default_width", o.imageSize},
        {"default_height", o.imageSize},
        {"default_steps", 20},
        // Chosen with easel-builtin-bench's sweep on validation captions: 0.875 all-correct at 1.0,
        // 0.84 at 1.25 to 2 (stronger guidance distorts small shapes: 0.76 at 5 after 6000 steps).
        {"default_guidance_scale", 1.0},
        {"default_scheduler", "DPM++ 2M Karras"},
        // What fine-tuning this small model on a few images takes (training/fine_tuner.cpp); SD's usual
        // 2e-6 / 1e-4 at batch 1 barely move it in a few hundred steps.
        {"fine_tune", {{"batch_size", 4}, {"dreambooth_learning_rate", 1e-4}, {"lora_learning_rate", 1e-3}}},
        {"training",
         {{"seed", o.seed},
          {"vae_steps", o.vaeSteps},
          {"unet_steps", step},
          {"unet_batch", o.unetBatch},
          {"offset_noise", o.offsetNoise},
          {"min_snr_gamma", o.minSnrGamma},
          {"vae_shape_weight", o.vaeShapeWeight},
          {"dataset_size", o.datasetSize}}}};
    std::ofstream(o.outputDir / "model.json") << sidecar.dump(2) << '\n';
    log("wrote " + (o.outputDir / "model.safetensors").string());
}

}  // namespace easel::inference::training
