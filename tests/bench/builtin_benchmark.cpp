// easel-builtin-bench: Easel's built-in model on this machine.
//  1. Speed: seconds for one 64x64 txt2img at the model's defaults (median of --repeats runs after a
//     warm-up).
//  2. The autoencoder's round trip per background (img2img at strength 0).
//  3. Guidance sweep on a validation set: single-shape captions of the training grammar drawn with a
//     seed the trainer never uses (so no held-out test prompt is looked at), two sampling seeds each,
//     scored with the same classical detector as the tests. This is how the sidecar's
//     default_guidance_scale is chosen; the held-out test then measures the choice.
//
//   easel-builtin-bench [--model DIR] [--guidance 1.5,2,3,5] [--prompts N] [--repeats N] [--threads N]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "inference/engine.h"
#include "inference/runtime_info.h"
#include "inference/training/shapes_dataset.h"
#include "shape_detector.h"

using namespace easel::inference;
using namespace easel::inference::training;

namespace {

std::vector<float> parseList(const std::string& s) {
    std::vector<float> out;
    std::stringstream in(s);
    for (std::string x; std::getline(in, x, ',');) out.push_back(std::stof(x));
    return out;
}

// Single-shape scenes of the data set grammar from a seed the trainer does not use, one per caption.
std::vector<Scene> validationScenes(int count) {
    constexpr std::uint64_t kValidationSeed = 20261127;
    std::vector<Scene> out;
    std::set<std::string> seen;
    for (std::uint64_t i = 0; static_cast<int>(out.size()) < count && i < 100000; ++i) {
        auto scene = sampleScene(kValidationSeed, i);
        if (scene.shapes.size() != 1 || !seen.insert(scene.caption()).second) continue;
        out.push_back(std::move(scene));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    easel::inference::restartWithoutSlowBlasCoreType(argv);
    std::string modelDir = std::string(EASEL_SOURCE_DIR) + "/resources/models/easel-shapes-64";
    std::string guidance = "1.5,2,3,5";
    int prompts = 48, repeats = 10, threads = static_cast<int>(std::thread::hardware_concurrency());
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::cerr << "easel-builtin-bench: " << a << " needs a value\n";
            return 2;
        }
        const std::string v = argv[++i];
        try {
            if (a == "--model")
                modelDir = v;
            else if (a == "--guidance")
                guidance = v;
            else if (a == "--prompts")
                prompts = std::stoi(v);
            else if (a == "--repeats")
                repeats = std::max(1, std::stoi(v));
            else if (a == "--threads")
                threads = std::stoi(v);
            else {
                std::cerr << "easel-builtin-bench: unknown option " << a << "\n";
                return 2;
            }
        } catch (const std::exception&) {
            std::cerr << "easel-builtin-bench: bad value for " << a << ": " << v << "\n";
            return 2;
        }
    }
    EngineOptions options;
    options.threads = threads;
    Engine engine(options);
    const auto t0 = std::chrono::steady_clock::now();
    try {
        engine.loadModel(modelDir);
    } catch (const std::exception& e) {
        std::cerr << "easel-builtin-bench: " << e.what() << "\n";
        return 1;
    }
    std::printf("model %s, %d threads, loaded in %.2f s\n", modelDir.c_str(), threads,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

    // 1. Speed at the model's defaults.
    GenerationRequest timed;
    timed.prompt = "a large red star in the center on a black background";
    timed.seed = 1;
    engine.generate(timed);  // warm-up
    std::vector<double> seconds;
    for (int i = 0; i < repeats; ++i) {
        const auto s = std::chrono::steady_clock::now();
        engine.generate(timed);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
    }
    std::sort(seconds.begin(), seconds.end());
    std::printf("txt2img 64x64, model defaults: median %.3f s, min %.3f s, max %.3f s over %d runs\n",
                seconds[seconds.size() / 2], seconds.front(), seconds.back(), repeats);

    const auto scenes = validationScenes(prompts);
    const auto frac = [](int a, int b) { return b > 0 ? static_cast<double>(a) / b : 0.0; };

    // 2. The autoencoder alone (img2img at strength 0 is encode + decode): no sampler can draw a shape
    //    better than this keeps it.
    {
        std::array<int, kBackgrounds.size()> total{}, kept{};
        std::array<double, kBackgrounds.size()> error{};
        for (const auto& scene : scenes) {
            const cv::Mat m = renderScene(scene, 64);
            Image init{64, 64, std::vector<std::uint8_t>(m.data, m.data + m.total() * 3)};
            GenerationRequest r;
            r.prompt = scene.caption();
            r.initImage = init;
            r.strength = 0.0f;
            r.seed = 1;
            const auto out = engine.generate(r).images[0];
            const auto d = easel::testing::detectShapes(out);
            const auto b = static_cast<std::size_t>(scene.background);
            ++total[b];
            kept[b] += !d.shapes.empty() && easel::testing::matches(d.shapes[0], scene.shapes[0]);
            double sum = 0;
            for (std::size_t i = 0; i < out.rgb.size(); ++i) sum += std::abs(int(out.rgb[i]) - int(init.rgb[i]));
            error[b] += sum / static_cast<double>(out.rgb.size());
        }
        std::printf("\nautoencoder round trip (strength 0) on %zu validation scenes:\n", scenes.size());
        for (std::size_t b = 0; b < kBackgrounds.size(); ++b)
            std::printf("  %-6s kept %d of %d, mean error %.2f levels\n", kBackgrounds[b].name, kept[b], total[b],
                        total[b] > 0 ? error[b] / total[b] : 0.0);
    }

    // 3. Guidance sweep on the validation set.
    std::printf("\nvalidation: %zu captions x 2 seeds (not the held-out test prompts)\n", scenes.size());
    std::printf("%8s %12s %8s %8s %8s", "guidance", "all-correct", "colour", "shape", "position");
    for (const auto& b : kBackgrounds) std::printf(" %8s", b.name);
    std::printf("\n");
    for (float g : parseList(guidance)) {
        int total = 0, correct = 0, color = 0, shape = 0, position = 0;
        std::array<int, kBackgrounds.size()> bgTotal{}, bgCorrect{};
        for (const auto& scene : scenes) {
            for (std::int64_t seed : {11, 12}) {
                GenerationRequest r;
                r.prompt = scene.caption();
                r.seed = seed;
                r.guidanceScale = g;
                const auto d = easel::testing::detectShapes(engine.generate(r).images[0]);
                const auto& want = scene.shapes[0];
                const auto bg = static_cast<std::size_t>(scene.background);
                ++total;
                ++bgTotal[bg];
                if (d.shapes.empty()) continue;
                color += d.shapes[0].color == want.color;
                shape += d.shapes[0].kind == want.kind;
                position += d.shapes[0].position == want.position;
                const bool ok = easel::testing::matches(d.shapes[0], want) && d.background == scene.background;
                correct += ok;
                bgCorrect[bg] += ok;
            }
        }
        std::printf("%8.2f %12.3f %8.3f %8.3f %8.3f", g, frac(correct, total), frac(color, total), frac(shape, total),
                    frac(position, total));
        for (std::size_t b = 0; b < kBackgrounds.size(); ++b) std::printf(" %8.3f", frac(bgCorrect[b], bgTotal[b]));
        std::printf("\n");
        std::fflush(stdout);
    }
    return 0;
}
