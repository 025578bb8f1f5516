#pragma once
// Trains Easel's built-in model from nothing: first the AutoencoderKL on rendered scenes, then the
// UNet and the CLIP-style text encoder together on the scenes' latents and captions (epsilon loss,
// AdamW, gradient clipping, EMA). Every stage checkpoints to a work folder and resumes from it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace easel::inference::training {

struct BuiltinTrainingOptions {
    std::filesystem::path workDir;    // checkpoints for resume
    std::filesystem::path outputDir;  // the finished model folder (model.json, model.safetensors, tokenizer.json)
    std::uint64_t seed = 1234;
    int imageSize = 64;
    int vaeSteps = 3000;
    int vaeBatch = 16;
    // Loss weight of shape pixels against plain background in the autoencoder's reconstruction loss.
    double vaeShapeWeight = 4.0;
    int datasetSize = 20000;
    int unetSteps = 8000;
    int unetBatch = 64;
    double unetLearningRate = 4e-4;
    double emaDecay = 0.999;
    float captionDropout = 0.1f;  // empty prompt, so that classifier-free guidance works
    // Per-image, per-channel constant added to the training noise ("offset noise"). SD's schedule keeps
    // ~7% of the signal at t=999, so without it the UNet reads the background colour from the mean of
    // its input instead of from the prompt, and sampling from pure noise gives a grey background.
    double offsetNoise = 0.3;
    // Min-SNR-gamma loss weighting; 0 turns it off (plain epsilon MSE). 20, not the paper's 5: with 5
    // the low-noise steps (weight 5/SNR: 0.36 at sigma 0.27) were undertrained, and img2img at
    // strength 0.3 repainted the whole picture.
    double minSnrGamma = 20.0;
    int checkpointEvery = 250;
    int threads = 0;          // 0: all cores
    bool exportOnly = false;  // write the model folder from the latest checkpoint without training further
};

// Runs (or resumes) all stages and writes the model folder. Prints progress with ETA to `log`.
void trainBuiltinModel(const BuiltinTrainingOptions& options, const std::function<void(const std::string&)>& log);

}  // namespace easel::inference::training
