#include "app/generate_command.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "inference/engine.h"

namespace easel::app {
namespace {

constexpr const char* kBuiltinModel = "easel-shapes-64";

void drawProgress(const inference::GenerationProgress& p, int samples) {
    constexpr int kWidth = 30;
    const int filled = p.total > 0 ? p.step * kWidth / p.total : 0;
    std::fprintf(stderr, "\r[%s%s] sample %d/%d step %d/%d %.1fs",
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(kWidth - filled), '.').c_str(), p.sample + 1, samples, p.step,
                 p.total, p.elapsedSeconds);
    std::fflush(stderr);
}

}  // namespace

std::filesystem::path defaultModelPath(const char* argv0) {
    if (const char* env = std::getenv("EASEL_MODELS_DIR"); env != nullptr && *env != '\0')
        return std::filesystem::path(env) / kBuiltinModel;
    std::error_code ec;
    const auto exe = std::filesystem::canonical("/proc/self/exe", ec);
    const auto base = ec ? std::filesystem::path(argv0).parent_path() : exe.parent_path();
    for (const auto& candidate : {base / ".." / "share" / "easel" / "models" / kBuiltinModel,
                                  std::filesystem::path(EASEL_SOURCE_DIR) / "resources" / "models" / kBuiltinModel}) {
        if (std::filesystem::exists(candidate / "model.json")) return candidate;
    }
    return std::filesystem::path(EASEL_SOURCE_DIR) / "resources" / "models" / kBuiltinModel;
}

int runGenerate(const ArgList& args, const char* argv0) {
    args.rejectUnknown(
        {"--model", "--prompt", "--negative-prompt", "--steps",     "--sampler",   "--scheduler",  "--seed",
         "--width", "--height", "--guidance",        "--cfg-scale", "--samples",   "--init-image", "--strength",
         "--mask",  "--out",    "--clip-skip",       "--device",    "--precision", "--clip-vocab", "--threads"},
        {"generate", "--karras", "--quiet"});
    // Every option is read before the model loads, so a typo fails at once.
    inference::EngineOptions options;
    options.device = args.value("--device").value_or("cpu");
    options.precision = args.value("--precision").value_or("fp32");
    options.threads = args.intValue("--threads", 0);
    options.clipVocabulary = args.value("--clip-vocab").value_or("");
    const auto modelPath = std::filesystem::path(args.value("--model").value_or(defaultModelPath(argv0).string()));

    inference::GenerationRequest r;
    const auto prompt = args.value("--prompt");
    if (!prompt) throw UsageError("generate needs --prompt");
    r.prompt = *prompt;
    r.negativePrompt = args.value("--negative-prompt").value_or("");
    r.steps = args.intValue("--steps", 0);
    r.scheduler = args.value("--sampler").value_or(args.value("--scheduler").value_or(""));
    r.karras = args.has("--karras");
    if (const auto seed = args.int64Value("--seed"); seed && *seed != -1) r.seed = *seed;  // -1: random
    r.width = args.intValue("--width", 0);
    r.height = args.intValue("--height", 0);
    r.guidanceScale = args.floatValue("--guidance", args.floatValue("--cfg-scale", -1.0f));
    r.samples = args.intValue("--samples", 1);
    r.clipSkip = args.intValue("--clip-skip", 1);
    r.strength = args.floatValue("--strength", 0.75f);
    if (const auto init = args.value("--init-image")) r.initImage = inference::readImage(*init);
    if (const auto mask = args.value("--mask")) r.mask = inference::readImage(*mask);

    inference::Engine engine(options);
    engine.loadModel(modelPath);
    const std::filesystem::path out = args.value("--out").value_or("easel.png");
    const bool quiet = args.has("--quiet");

    const auto result = engine.generate(r, [&](const inference::GenerationProgress& p) {
        if (!quiet) drawProgress(p, r.samples);
        return true;
    });
    if (!quiet) std::fprintf(stderr, "\n");
    for (std::size_t i = 0; i < result.images.size(); ++i) {
        auto path = out;
        if (result.images.size() > 1)
            path.replace_filename(out.stem().string() + "-" + std::to_string(i) + out.extension().string());
        inference::writePng(path, result.images[i], {{"parameters", result.infotexts[i]}});
        std::cout << path.string() << "  seed " << result.seeds[i] << '\n';
    }
    std::cerr << "generated " << result.images.size() << " image(s) in " << result.seconds << " s with "
              << engine.model().name << '\n';
    return EXIT_SUCCESS;
}

}  // namespace easel::app
