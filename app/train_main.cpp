// easel-train: reproduces Easel's built-in model from the repository (no downloads).

#include <cstdlib>
#include <iostream>
#include <string_view>

#include "app/app_args.h"
#include "inference/runtime_info.h"
#include "inference/training/builtin_trainer.h"

namespace {

constexpr std::string_view kUsage = R"(Usage: easel-train builtin [options]

Trains Easel's built-in model (shapes in named colours and positions, 64x64) from scenes it draws
itself, and writes the model folder. Resumable: rerun the same command after an interruption.

Options:
  --out DIR          model folder to write (default resources/models/easel-shapes-64)
  --work DIR         checkpoints for resume (default build/train-builtin)
  --seed N           data and initialisation seed (default 1234)
  --vae-steps N      autoencoder steps (default 3000)
  --unet-steps N     UNet + text encoder steps (default 8000)
  --batch N          UNet batch size (default 64)
  --dataset N        scenes in the UNet data set (default 20000)
  --offset-noise X   per-channel constant added to the training noise (default 0.3)
  --min-snr-gamma X  Min-SNR loss weighting of the UNet; 0 turns it off (default 20)
  --threads N        CPU threads (default: all cores)
  --export-only      write the model folder from the latest checkpoint and stop
  -h, --help         print this help
)";

}  // namespace

int main(int argc, char** argv) {
    easel::inference::restartWithoutSlowBlasCoreType(argv);
    using namespace easel;
    try {
        const app::ArgList args(argc, argv);
        if (args.has("--help") || args.has("-h") || args.raw().empty() || args.raw().front() != "builtin") {
            std::cout << kUsage;
            return args.has("--help") || args.has("-h") ? EXIT_SUCCESS : 2;
        }
        app::ArgList rest(argc - 1, argv + 1);
        rest.rejectUnknown({"--out", "--work", "--seed", "--vae-steps", "--unet-steps", "--batch", "--dataset",
                            "--threads", "--offset-noise", "--min-snr-gamma"},
                           {"--export-only"});
        inference::training::BuiltinTrainingOptions o;
        o.outputDir = rest.value("--out").value_or("resources/models/easel-shapes-64");
        o.workDir = rest.value("--work").value_or("build/train-builtin");
        o.seed = static_cast<std::uint64_t>(rest.intValue("--seed", 1234));
        o.vaeSteps = rest.intValue("--vae-steps", o.vaeSteps);
        o.unetSteps = rest.intValue("--unet-steps", o.unetSteps);
        o.unetBatch = rest.intValue("--batch", o.unetBatch);
        o.datasetSize = rest.intValue("--dataset", o.datasetSize);
        o.threads = rest.intValue("--threads", 0);
        o.offsetNoise = rest.floatValue("--offset-noise", static_cast<float>(o.offsetNoise));
        o.minSnrGamma = rest.floatValue("--min-snr-gamma", static_cast<float>(o.minSnrGamma));
        if (o.minSnrGamma < 0) throw app::UsageError("--min-snr-gamma must be 0 or more");
        o.exportOnly = rest.has("--export-only");
        inference::training::trainBuiltinModel(o, [](const std::string& line) { std::cout << line << std::endl; });
        return EXIT_SUCCESS;
    } catch (const app::UsageError& e) {
        std::cerr << "easel-train: " << e.what() << "\nTry 'easel-train --help'.\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "easel-train: " << e.what() << '\n';
        return EXIT_FAILURE;
    }
}
