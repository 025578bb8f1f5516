// easel-bench: SD 1.5 / SDXL geometry with random weights in memory, timed on this machine. What each
// mode measures is in kUsage below (easel-bench --help prints it).

#include <sys/resource.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "bench_timing.h"
#include "inference/adapters/adapter.h"
#include "inference/adapters/adapter_stack.h"
#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/loading/checkpoint_writer.h"
#include "inference/loading/diffusers_key_map.h"
#include "inference/loading/safetensors.h"
#include "inference/models/autoencoder_kl.h"
#include "inference/models/clip_text_model.h"
#include "inference/models/unet_2d_condition.h"
#include "inference/runtime_info.h"
#include "inference/tensor_utils.h"
#include "roofline.h"
#include "training_benchmark.h"

using namespace easel::inference;
using easel::bench::medianSeconds;
using easel::bench::peakRssGiB;

namespace {

constexpr const char* kUsage =
    R"(easel-bench: speed and memory of Easel's networks on this machine (random weights, SD geometry)

  easel-bench [--sizes 256,512] [--precisions fp32,bf16] [--steps N] [--threads N] [--trace DIR]
              [--layout nhwc|nchw]
      SD 1.5 geometry (UNet 320/640/1280/1280, CLIP ViT-L/14, VAE 128/256/512/512): text encoder, UNet
      step with guidance (batch 2), VAE decode, 20-step end to end, effective GFLOP/s (SD 1.5's FLOPs:
      UNet step 1.61 TFLOP at 512², 0.36 at 256²; VAE decode 2.51 TFLOP at 512²) and peak RSS.
      --trace writes chrome://tracing files of one UNet step and one decode per size into DIR.
  easel-bench --roofline [--sizes 512] [--precisions bf16] [--steps N] [--top N]
      The UNet step with guidance and the VAE decode as a multiple of this machine's floor: every conv,
      linear and attention-product shape of the graph is replayed alone to measure the rate the kernels
      reach here; floor = FLOPs at those rates (attention's products at the linear rate). Prints per
      category FLOPs, time in the graph and alone, and the N shapes that lose the most (default 8).
      Precision: bf16 where the CPU has fast bf16 (AVX-512), else fp32, unless --precisions.
  easel-bench --write-checkpoint F.safetensors
      SD 1.5 with random weights as an fp16 single file.
  easel-bench --load-checkpoint F.safetensors --clip-vocab bpe_simple_vocab_16e6.txt.gz
              [--precisions bf16] [--sizes 512] [--steps N]
      Engine load + one generation of N steps with guidance: load time, generation time, peak RSS.
  easel-bench --lora-rank 64 [--precisions fp32]
      Time to merge a random kohya LoRA of that rank (every attention and ResNet module of the UNet, the
      text encoder's attention and MLP) into SD 1.5 and to take it out again (AdapterStack).
  easel-bench --train lora|dreambooth [--rank 16] [--train-size 512] [--precisions bf16] [--steps N]
              [--checkpointing on|off]
      Seconds per fine-tuning step (batch 1, no prior images) against the UNet's inference forward pass at
      the same size and precision, and peak RSS. Gradient checkpointing: the trainer's default (on for
      DreamBooth, off for LoRA) unless given.
  easel-bench --family sdxl [--precisions bf16] [--steps N] [--guided-size 1024] [--unguided-size 512]
              [--vae-size 1024]
      SDXL base geometry (UNet 320/[1,2,4], depth [0,2,10], context 2048, adm 2816; CLIP-L + bigG; VAE
      128/[1,2,4,4]): both text encoders, a UNet step with guidance (batch 2), one without (batch 1), a VAE
      decode, peak RSS. Precision: bf16 where the CPU has fast bf16, else fp32, unless --precisions.
  easel-bench --family sdxl --write-checkpoint F.safetensors
      SDXL base with random weights, fp16.
  easel-bench --vae-tiling 2048 [--precisions fp32] [--tile 512] [--overlap 128]
      One VAE decode of that side (SD / SDXL VAE geometry 128/[1,2,4,4], random weights) in tiles of --tile
      pixels sharing --overlap (the Engine's default above 1024²), then the same decode whole: time and
      the process's peak RSS after each (the tiled one runs first, so its peak is its own). One run each.
  easel-bench --help
      This text.

Each time is the median of N runs (default 3) after a warm-up run.
)";

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string x; std::getline(in, x, ',');) out.push_back(x);
    return out;
}

// --write-checkpoint: the SD 1.5 networks with random weights as an original-layout fp16 single file
// (what users download, ~2 GB), for --load-checkpoint to load and run in a fresh process.
int writeCheckpoint(const std::string& path) {
    UNet2DConditionModel unet(UNetConfig{});
    AutoencoderKL vae(VAEConfig{});
    CLIPTextModel text(TextEncoderConfig{});
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> tensors;
    auto add = [&](torch::nn::Module& m, const std::string& prefix) {
        for (const auto& item : m.named_parameters(true)) {
            keep.push_back(item.value().to(torch::kFloat16).contiguous());
            tensors.push_back({prefix + item.key(),
                               DType::F16,
                               keep.back().sizes().vec(),
                               {static_cast<const std::byte*>(keep.back().data_ptr()), keep.back().nbytes()}});
        }
        for (const auto& item : m.named_buffers(true)) {
            keep.push_back(item.value().contiguous());
            tensors.push_back({prefix + item.key(),
                               *fileDtypeOf(keep.back().scalar_type()),
                               keep.back().sizes().vec(),
                               {static_cast<const std::byte*>(keep.back().data_ptr()), keep.back().nbytes()}});
        }
    };
    add(*unet, "model.diffusion_model.");
    add(*vae, "first_stage_model.");
    add(*text, "cond_stage_model.transformer.");
    writeSafetensors(path, tensors);
    std::printf("wrote %s (%zu tensors)\n", path.c_str(), tensors.size());
    return 0;
}

// --load-checkpoint: what a user sees: Engine::loadModel on a single file, then one 512x512
// generation of `steps` steps with guidance; load time, generation time and the process's peak RSS.
int loadAndGenerate(const std::string& path, const std::string& precision, const std::string& vocab, int size,
                    int steps, int threads) {
    EngineOptions options;
    options.precision = precision;
    options.threads = threads;
    options.clipVocabulary = vocab;
    Engine engine(options);
    const auto t0 = std::chrono::steady_clock::now();
    engine.loadModel(path);
    const double load = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("loaded %s in %s: %.1f s, peak %.2f GiB\n", path.c_str(), precision.c_str(), load, peakRssGiB());
    std::fflush(stdout);
    GenerationRequest request;
    request.prompt = "a photograph of an astronaut riding a horse";
    request.width = request.height = size;
    request.steps = steps;
    request.guidanceScale = 7.5f;
    request.seed = 1;
    const auto t1 = std::chrono::steady_clock::now();
    (void)engine.generate(request);
    const double gen = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    std::printf("%s %dx%d, %d steps: %.1f s end to end; peak RSS %.2f GiB (%.2f GB)\n", precision.c_str(), size, size,
                steps, gen, peakRssGiB(), peakRssGiB() * 1.073741824);
    return 0;
}

double secondsSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// --family sdxl --write-checkpoint: SDXL base with random weights as an original-layout fp16 single
// file (~6.9 GB), built in bf16 so that the process holds the networks once plus the fp16 copies.
int writeSDXLCheckpoint(const std::string& path) {
    torch::NoGradGuard noGrad;
    const auto t0 = std::chrono::steady_clock::now();
    auto model = buildRandomModel(sdxlBaseGeometry(), torch::kBFloat16);
    saveSingleFileCheckpoint(model, path, DType::F16, {{"modelspec.architecture", "stable-diffusion-xl-v1-base"}});
    std::printf("wrote %s (SDXL base geometry, random weights, fp16) in %.1f s; peak RSS %.2f GiB\n", path.c_str(),
                secondsSince(t0), peakRssGiB());
    return 0;
}

// --family sdxl: SDXL base geometry with random weights, laid out as the engine keeps it on the CPU.
// The UNet runs with a 77-token context of 2048 and the 2816-wide `vector` (pooled + size embeddings).
// steps <= 1 times one run without a warm-up (a 1024² SDXL step on a small CPU takes minutes).
int sdxlBenchmark(const std::string& precision, int steps, int threads, int guidedSize, int unguidedSize, int vaeSize) {
    torch::set_num_threads(threads);
    torch::NoGradGuard noGrad;
    const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    const auto t0 = std::chrono::steady_clock::now();
    auto model = buildRandomModel(sdxlBaseGeometry(), dtype);
    useChannelsLast(*model.unet);
    useChannelsLast(*model.vae);
    std::size_t parameters = 0;
    for (auto* m : {static_cast<torch::nn::Module*>(model.unet.get()), static_cast<torch::nn::Module*>(model.vae.get()),
                    model.textModule.get(), model.textModule2.get()}) {
        for (const auto& p : m->parameters()) parameters += static_cast<std::size_t>(p.numel());
    }
    std::printf(
        "SDXL base geometry (%s, random weights, %.2f B parameters, built in %.1f s), %d threads, libtorch %s\n",
        precision.c_str(), static_cast<double>(parameters) / 1e9, secondsSince(t0), threads, TORCH_VERSION);
    std::fflush(stdout);
    const auto timed = [&](auto&& f) {
        if (steps > 1) return medianSeconds(f, steps);
        const auto start = std::chrono::steady_clock::now();
        f();
        return secondsSince(start);
    };
    const auto& unetConfig = model.detected.unet;
    const auto ids = torch::randint(0, 49407, {2, 77}, torch::kLong);
    torch::Tensor context;
    const double textSeconds = timed([&] {
        const auto a = model.textEncoder->encode(ids, 2).hidden;
        const auto b = model.textEncoder2->encode(ids, 2).hidden;
        context = torch::cat({a, b}, -1).to(dtype);
    });
    std::printf("text encoders (CLIP-L + bigG, batch 2): %.3f s\n", textSeconds);
    std::fflush(stdout);
    const auto unetStep = [&](int size, int batch) {
        const int latent = size / 8;
        const auto x = torch::randn({batch, 4, latent, latent}).to(dtype);
        const auto t = torch::full({batch}, 500.0f);
        const auto y = torch::randn({batch, unetConfig.admInChannels}).to(dtype);
        const auto c = context.slice(0, 0, batch);
        return timed([&] { (void)model.unet->forward(x, t, c, y); });
    };
    const double guided = unetStep(guidedSize, 2);
    std::printf("UNet step with guidance (batch 2) at %dx%d: %.2f s\n", guidedSize, guidedSize, guided);
    std::fflush(stdout);
    const double unguided = unetStep(unguidedSize, 1);
    std::printf("UNet step without guidance (batch 1) at %dx%d: %.2f s\n", unguidedSize, unguidedSize, unguided);
    std::fflush(stdout);
    const int vaeLatent = vaeSize / 8;
    const auto z = torch::randn({1, 4, vaeLatent, vaeLatent}).to(dtype);
    const double decode = timed([&] { (void)model.vae->decode(z); });
    std::printf("VAE decode (untiled) at %dx%d: %.2f s\n", vaeSize, vaeSize, decode);
    std::printf("peak RSS %.2f GiB (%.2f GB)\n", peakRssGiB(), peakRssGiB() * 1.073741824);
    return 0;
}

// --vae-tiling: a large decode in tiles, then whole, with the peak RSS after each.
int vaeTilingBenchmark(int side, const std::string& precision, int tile, int overlap, int threads) {
    torch::set_num_threads(threads);
    torch::NoGradGuard noGrad;
    const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    std::optional<AutoencoderKL> holder;
    {
        DefaultDtypeGuard dtypeGuard(dtype);
        holder.emplace(VAEConfig{});
    }
    auto& vae = *holder;
    vae->eval();
    useChannelsLast(*vae);
    const int factor = VAEConfig{}.downsampleFactor();
    const auto z = torch::randn({1, 4, side / factor, side / factor}).to(dtype) * 0.2;
    double weightBytes = 0;
    for (const auto& p : vae->parameters()) weightBytes += static_cast<double>(p.nbytes());
    std::printf("VAE decode %dx%d, %s, %d threads, weights %.2f GiB, peak RSS before %.2f GiB\n", side, side,
                precision.c_str(), threads, weightBytes / 1073741824.0, peakRssGiB());
    std::fflush(stdout);
    const auto clock = [](auto&& f) {
        const auto start = std::chrono::steady_clock::now();
        f();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const double tiled = clock([&] { (void)vae->decodeTiled(z, tile / factor, overlap / factor); });
    std::printf("tiled (%d px tiles, %d px overlap): %.1f s, peak RSS %.2f GiB\n", tile, overlap, tiled, peakRssGiB());
    std::fflush(stdout);
    const double whole = clock([&] { (void)vae->decode(z); });
    std::printf("whole: %.1f s, peak RSS %.2f GiB\n", whole, peakRssGiB());
    return 0;
}

// The kohya name of an SD 1.5 weight a typical LoRA/LoCon trains, or "" for the others: attention
// (proj_in/out, q/k/v/out, feed-forward) and ResNet (conv1, conv2, time_emb_proj) modules of the
// UNet, attention and MLP of the text encoder.
std::string loraNameOf(const std::string& key, const DiffusersLayout& layout) {
    const auto d = originalToDiffusersKey(key, layout);
    if (!d || d->component == DiffusersComponent::VAE || !d->key.ends_with(".weight")) return "";
    const auto path = d->key.substr(0, d->key.size() - 7);
    static const char* kUNet[] = {".proj_in",       ".proj_out", ".to_q",  ".to_k",  ".to_v",         ".to_out.0",
                                  ".ff.net.0.proj", ".ff.net.2", ".conv1", ".conv2", ".time_emb_proj"};
    static const char* kText[] = {".q_proj", ".k_proj", ".v_proj", ".out_proj", ".fc1", ".fc2"};
    const bool unet = d->component == DiffusersComponent::UNet;
    bool wanted = false;
    for (const char* s : unet ? std::vector<const char*>(std::begin(kUNet), std::end(kUNet))
                              : std::vector<const char*>(std::begin(kText), std::end(kText)))
        wanted = wanted || path.ends_with(s);
    if (unet && path.find("attentions") == std::string::npos && path.find("resnets") == std::string::npos)
        wanted = false;
    if (!wanted) return "";
    auto name = std::string(unet ? "lora_unet_" : "lora_te_") + path;
    std::replace(name.begin(), name.end(), '.', '_');
    return name;
}

// --lora-rank: apply / remove times of a random rank-N LoRA on SD 1.5 (random weights in memory).
int loraBenchmark(int rank, const std::string& precision, int threads) {
    torch::set_num_threads(threads);
    torch::NoGradGuard noGrad;
    const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    DetectedModel detected;  // the defaults are SD 1.5
    std::optional<UNet2DConditionModel> unet;
    std::optional<CLIPTextModel> text;
    {
        DefaultDtypeGuard dtypeGuard(dtype);
        unet.emplace(detected.unet);
        text.emplace(detected.text);
    }
    useChannelsLast(**unet);  // as the engine keeps them on the CPU
    std::map<std::string, torch::Tensor> weights;
    for (const auto& p : (*unet)->named_parameters(true)) weights.emplace(detected.unetPrefix + p.key(), p.value());
    for (const auto& p : (*text)->named_parameters(true)) weights.emplace(detected.textPrefix + p.key(), p.value());

    // A kohya file as trainers write it: float16 down/up, float32 alpha.
    DiffusersLayout layout;
    layout.unetLayersPerBlock = detected.unet.numResBlocks;
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> tensors;
    auto add = [&](const std::string& name, torch::Tensor t) {
        keep.push_back(t.contiguous());
        tensors.push_back({name,
                           *fileDtypeOf(keep.back().scalar_type()),
                           keep.back().sizes().vec(),
                           {static_cast<const std::byte*>(keep.back().data_ptr()), keep.back().nbytes()}});
    };
    std::size_t modules = 0;
    double changed = 0;
    for (const auto& [key, w] : weights) {
        const auto name = loraNameOf(key, layout);
        if (name.empty()) continue;
        const bool conv = w.dim() == 4;
        const auto in = w.size(1);
        add(name + ".lora_down.weight",
            (conv ? torch::randn({rank, in, w.size(2), w.size(3)}) : torch::randn({rank, in}))
                .mul(0.01)
                .to(torch::kFloat16));
        add(name + ".lora_up.weight", (conv ? torch::randn({w.size(0), rank, 1, 1}) : torch::randn({w.size(0), rank}))
                                          .mul(0.01)
                                          .to(torch::kFloat16));
        add(name + ".alpha", torch::tensor(static_cast<float>(rank) / 2));
        ++modules;
        changed += static_cast<double>(w.numel());
    }
    const auto path =
        std::filesystem::temp_directory_path() / ("easel-bench-lora-" + std::to_string(::getpid()) + ".safetensors");
    writeSafetensors(path, tensors);
    keep.clear();
    tensors.clear();
    auto adapter = std::make_shared<const Adapter>(Adapter::open(path));
    std::filesystem::remove(path);  // the mapping stays valid
    std::printf("SD 1.5 geometry (%s, random weights), %d threads: rank-%d LoRA on %zu modules, %.0f M weights\n",
                precision.c_str(), threads, rank, modules, changed / 1e6);

    AdapterStack stack(detected, weights);
    auto t0 = std::chrono::steady_clock::now();
    stack.apply({{adapter, 0.8, 0.8}});
    const double firstApply = secondsSince(t0);
    const double backupGiB = static_cast<double>(stack.backupBytes()) / (1 << 30);
    t0 = std::chrono::steady_clock::now();
    stack.apply({{adapter, 0.5, 0.5}});
    const double reapply = secondsSince(t0);
    t0 = std::chrono::steady_clock::now();
    stack.apply({});
    const double remove = secondsSince(t0);
    std::printf(
        "apply %.2f s (first, with the base copies), %.2f s (other strength); remove %.3f s; base copies "
        "%.2f GiB; peak RSS %.2f GiB\n",
        firstApply, reapply, remove, backupGiB, peakRssGiB());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    easel::inference::restartWithoutSlowBlasCoreType(argv);
    std::string sizes = "256,512", precisions = "fp32,bf16";
    std::string traceDir, writePath, loadPath, vocab, family = "sd15";
    bool precisionsGiven = false;
    int guidedSize = 1024, unguidedSize = 512, vaeSize = 1024;
    bool nchw = false;  // --layout nchw: convolution weights left NCHW, to compare with the engine's NHWC
    int steps = 3, threads = static_cast<int>(std::thread::hardware_concurrency()), loraRank = 0;
    std::string train;
    int trainSize = 512, rank = 16;
    bool roofline = false, sizesGiven = false;
    int top = 8, checkpointing = -1;
    int vaeTilingSide = 0, tile = 512, overlap = 128;
    // Every option that takes a value, and what it sets.
    using Setter = std::function<void(const std::string&)>;
    const auto text = [](std::string& target) -> Setter { return [&target](const std::string& v) { target = v; }; };
    const auto number = [](int& target) -> Setter {
        return [&target](const std::string& v) { target = std::stoi(v); };
    };
    const std::map<std::string, Setter> options{
        {"--sizes",
         [&](const std::string& v) {
             const auto list = split(v);
             if (list.empty()) throw std::invalid_argument("no size");
             for (const auto& size : list) (void)std::stoi(size);  // numbers, or a clear error here
             sizes = v, sizesGiven = true;
         }},
        {"--precisions", [&](const std::string& v) { precisions = v, precisionsGiven = true; }},
        {"--family", text(family)},
        {"--guided-size", number(guidedSize)},
        {"--unguided-size", number(unguidedSize)},
        {"--vae-size", number(vaeSize)},
        {"--steps", number(steps)},
        {"--threads", number(threads)},
        {"--layout", [&](const std::string& v) { nchw = v == "nchw"; }},
        {"--trace", text(traceDir)},
        {"--write-checkpoint", text(writePath)},
        {"--load-checkpoint", text(loadPath)},
        {"--clip-vocab", text(vocab)},
        {"--lora-rank", number(loraRank)},
        {"--train", text(train)},
        {"--train-size", number(trainSize)},
        {"--rank", number(rank)},
        {"--top", number(top)},
        {"--vae-tiling", number(vaeTilingSide)},
        {"--tile", number(tile)},
        {"--overlap", number(overlap)},
        {"--checkpointing",
         [&](const std::string& v) {
             if (v != "on" && v != "off") throw std::invalid_argument("on or off");
             checkpointing = v == "on" ? 1 : 0;
         }},
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (a == "--roofline") {
            roofline = true;
            continue;
        }
        const auto option = options.find(a);
        if (option == options.end()) {
            std::fprintf(stderr, "easel-bench: unknown option '%s'\n\n%s", a.c_str(), kUsage);
            return 2;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "easel-bench: %s needs a value (see --help)\n", a.c_str());
            return 2;
        }
        try {
            option->second(argv[++i]);
        } catch (const std::exception&) {
            std::fprintf(stderr, "easel-bench: bad value '%s' for %s (see --help)\n", argv[i], a.c_str());
            return 2;
        }
    }
    if (roofline) {
        const auto size = sizesGiven ? std::stoi(split(sizes).back()) : 512;
        return easel::bench::rooflineBenchmark(
            precisionsGiven ? split(precisions) : std::vector<std::string>{cpuHasFastBF16() ? "bf16" : "fp32"}, size,
            steps, threads, top);
    }
    if (vaeTilingSide > 0) {
        const std::string precision =
            precisionsGiven ? split(precisions).front() : (cpuHasFastBF16() ? "bf16" : "fp32");
        return vaeTilingBenchmark(vaeTilingSide, precision, tile, overlap, threads);
    }
    if (!train.empty()) {
        const std::string precision =
            precisionsGiven ? split(precisions).front() : (cpuHasFastBF16() ? "bf16" : "fp32");
        return easel::bench::trainingBenchmark(train, precision, rank, trainSize, steps, threads, checkpointing);
    }
    if (family == "sdxl") {
        if (!writePath.empty()) return writeSDXLCheckpoint(writePath);
        const std::string precision =
            precisionsGiven ? split(precisions).front() : (cpuHasFastBF16() ? "bf16" : "fp32");
        return sdxlBenchmark(precision, steps, threads, guidedSize, unguidedSize, vaeSize);
    }
    if (family != "sd15") {
        std::fprintf(stderr, "--family is sd15 or sdxl\n");
        return 2;
    }
    if (loraRank > 0) return loraBenchmark(loraRank, split(precisions).front(), threads);
    if (!writePath.empty()) return writeCheckpoint(writePath);
    if (!loadPath.empty())
        return loadAndGenerate(loadPath, split(precisions).front(), vocab, std::stoi(split(sizes).back()), steps,
                               threads);
    torch::set_num_threads(threads);
    torch::NoGradGuard noGrad;
    UNetConfig unetConfig;  // the defaults are SD 1.5
    VAEConfig vaeConfig;
    TextEncoderConfig textConfig;
    std::printf("SD 1.5 geometry, random weights, %d threads, libtorch %s, %s weights\n", threads, TORCH_VERSION,
                nchw ? "NCHW" : "channels-last");
    if (precisions.find("bf16") != std::string::npos && !cpuHasFastBF16()) {
        std::printf(
            "note: this CPU has no AVX-512; libtorch 1.13's bf16 matmuls take a slow single-threaded path "
            "here, so the bf16 rows measure that path, not oneDNN\n");
    }
    std::printf("%-6s %-5s %12s %14s %12s %14s %12s %14s %10s\n", "prec", "size", "text s", "unet s/step", "unet GF/s",
                "vae dec s", "vae GF/s", "e2e s", "peak GiB");
    for (const auto& precision : split(precisions)) {
        const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
        // Built and laid out the way the engine loads a checkpoint: directly in the compute dtype,
        // convolution weights channels-last.
        std::optional<UNet2DConditionModel> unetHolder;
        std::optional<AutoencoderKL> vaeHolder;
        std::optional<CLIPTextModel> textHolder;
        {
            DefaultDtypeGuard dtypeGuard(dtype);
            unetHolder.emplace(unetConfig);
            vaeHolder.emplace(vaeConfig);
            textHolder.emplace(textConfig);
        }
        auto& unet = *unetHolder;
        auto& vae = *vaeHolder;
        auto& text = *textHolder;
        unet->eval();
        vae->eval();
        text->eval();
        if (!nchw) {
            useChannelsLast(*unet);
            useChannelsLast(*vae);
        }
        const auto ids = torch::randint(0, 49407, {2, 77}, torch::kLong);
        torch::Tensor context;
        const double textSeconds = medianSeconds([&] { context = text->encode(ids, 1).hidden; }, 3);
        for (const auto& sizeText : split(sizes)) {
            const int size = std::stoi(sizeText);
            const int latent = size / 8;
            const double scale = static_cast<double>(size) * size / (512.0 * 512.0);
            const double unetFlops = size == 256 ? 0.36e12 : 1.61e12 * scale;
            const double vaeFlops = 2.51e12 * scale;
            const auto x = torch::randn({2, 4, latent, latent}).to(dtype);
            const auto t = torch::full({2}, 500.0f);
            const double unetSeconds = medianSeconds([&] { (void)unet->forward(x, t, context); }, steps);
            const auto z = torch::randn({1, 4, latent, latent}).to(dtype);
            const double vaeSeconds = medianSeconds([&] { (void)vae->decode(z); }, steps);
            if (!traceDir.empty()) {
                // chrome://tracing files of one UNet step and one decode, for finding where time goes.
                const auto stem = traceDir + "/" + precision + "-" + sizeText;
                {
                    torch::autograd::profiler::RecordProfile guard(stem + "-unet.trace");
                    (void)unet->forward(x, t, context);
                }
                {
                    torch::autograd::profiler::RecordProfile guard(stem + "-vae.trace");
                    (void)vae->decode(z);
                }
            }
            const double e2e = textSeconds + 20 * unetSeconds + vaeSeconds;
            std::printf("%-6s %-5d %12.3f %14.3f %12.1f %14.3f %12.1f %14.1f %10.2f\n", precision.c_str(), size,
                        textSeconds, unetSeconds, unetFlops / unetSeconds / 1e9, vaeSeconds,
                        vaeFlops / vaeSeconds / 1e9, e2e, peakRssGiB());
            std::fflush(stdout);
        }
    }
    std::printf("e2e = text encoder + 20 UNet steps with guidance + VAE decode.\n");
    return 0;
}
