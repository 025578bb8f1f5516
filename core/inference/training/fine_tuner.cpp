#include "inference/training/fine_tuner.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "inference/engine_loaded.h"
#include "inference/loading/checkpoint_writer.h"
#include "inference/models/clip_text_model.h"
#include "inference/pipelines/pipeline.h"
#include "inference/training/fine_tune_step.h"
#include "inference/training/training_utils.h"

namespace easel::inference::training {
namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
    double learningRate = 0;
    int batch = 1;
    double offsetNoise = 0;
    double minSnrGamma = 0;
};

// What the model's folder says about how it was trained and how to fine-tune it; the request wins.
Settings settingsFor(const FineTuneOptions& o, const nlohmann::json& sidecar) {
    Settings s;
    const auto training = sidecar.value("training", nlohmann::json::object());
    s.offsetNoise = training.value("offset_noise", 0.0);
    s.minSnrGamma = training.value("min_snr_gamma", 0.0);
    const auto tune = sidecar.value("fine_tune", nlohmann::json::object());
    const bool lora = o.method == FineTuneMethod::LoRA;
    s.learningRate = o.learningRate > 0
                         ? o.learningRate
                         : tune.value(lora ? "lora_learning_rate" : "dreambooth_learning_rate", lora ? 1e-4 : 2e-6);
    s.batch = o.batchSize > 0 ? o.batchSize : tune.value("batch_size", 1);
    return s;
}

// Centre crop to the target's aspect ratio, then resize: what DreamBooth trainers do with users' photos.
Image fitImage(const Image& image, int width, int height) {
    const double want = static_cast<double>(width) / height;
    int w = image.width, h = image.height, x = 0, y = 0;
    if (static_cast<double>(w) / h > want) {
        w = std::max(1, static_cast<int>(h * want + 0.5));
        x = (image.width - w) / 2;
    } else {
        h = std::max(1, static_cast<int>(w / want + 0.5));
        y = (image.height - h) / 2;
    }
    Image crop;
    crop.width = w;
    crop.height = h;
    crop.rgb.resize(static_cast<std::size_t>(w) * h * 3);
    for (int row = 0; row < h; ++row) {
        const auto* src = image.rgb.data() + (static_cast<std::size_t>(row + y) * image.width + x) * 3;
        std::copy(src, src + static_cast<std::size_t>(w) * 3, crop.rgb.data() + static_cast<std::size_t>(row) * w * 3);
    }
    return resizeImage(crop, width, height);
}

// The built-in model's word tokenizer reads unknown words as <|unk|>; DreamBooth gives the new words of
// `texts` (the rare token) rows of their own. A new word's row starts at the mean of the rows of the
// class nouns it stands for (`swaps`: "zwx" for "circle", "square", ...), as textual inversion starts
// from an initializer word, so that it begins as a noun of that kind; a word without one starts at the
// mean of all rows.
void growVocabulary(Engine::Loaded& l, const std::vector<std::string>& texts,
                    const std::vector<std::pair<std::string, std::string>>& swaps) {
    auto& tok = *l.wordTokenizer;
    std::vector<std::string> words(tok.words().begin() + 3, tok.words().end());  // without the specials
    const std::set<std::string> known(words.begin(), words.end());
    std::vector<std::string> added;
    for (const auto& text : texts) {
        std::string word;
        auto flush = [&] {
            if (!word.empty() && !known.contains(word) && std::find(added.begin(), added.end(), word) == added.end())
                added.push_back(word);
            word.clear();
        };
        for (const char c : text) {
            if (std::isalpha(static_cast<unsigned char>(c)) != 0) {
                word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            } else {
                flush();
            }
        }
        flush();
    }
    if (added.empty()) return;
    auto* clip = dynamic_cast<CLIPTextModelImpl*>(l.model.textModule.get());
    if (clip == nullptr) throw GenerationError("this model's text encoder cannot learn new words");
    auto& embedding = clip->text_model->embeddings->token_embedding;
    torch::NoGradGuard noGrad;
    const auto old = embedding->weight;
    const auto mean = old.slice(0, 3).mean(0, true);
    std::vector<torch::Tensor> rows{old};
    for (const auto& word : added) {
        std::vector<std::int64_t> nouns;
        for (const auto& [token, noun] : swaps) {
            const auto at = std::find(tok.words().begin(), tok.words().end(), noun);
            if (token == word && at != tok.words().end()) nouns.push_back(at - tok.words().begin());
        }
        rows.push_back(nouns.empty() ? mean : old.index_select(0, torch::tensor(nouns)).mean(0, true));
    }
    embedding->weight.set_data(torch::cat(rows).contiguous());
    words.insert(words.end(), added.begin(), added.end());
    tok = WordTokenizer::fromWords(words);
    clip->config.vocabSize = tok.vocabSize();
    l.model.detected.text.vocabSize = tok.vocabSize();
}

std::vector<int> tokenIds(const Engine::Loaded& l, const std::string& text) {
    const int length = l.model.detected.text.maxPositions;
    if (l.wordTokenizer != nullptr) return l.wordTokenizer->encodePadded(text, length);
    const int pad = l.model.detected.family == ModelFamily::SD2 ? 0 : l.clipTokenizer->eosId();
    return l.clipTokenizer->padToContext(l.clipTokenizer->encode(text), pad, length);
}

torch::Tensor idTensor(const std::vector<std::vector<int>>& rows) {
    std::vector<torch::Tensor> t;
    for (const auto& r : rows) t.push_back(torch::tensor(r, torch::kLong));
    return torch::stack(t);
}

// Latent mean and std of each image (sampled afresh at every step, as diffusers' trainers do).
std::pair<torch::Tensor, torch::Tensor> encodeImages(Engine::Loaded& l, const std::vector<Image>& images) {
    torch::NoGradGuard noGrad;
    std::vector<torch::Tensor> means, stds;
    for (const auto& image : images) {
        const auto dist = l.model.vae->encode(imageToTensor(image).to(l.device, l.dtype));
        means.push_back(dist.mean.to(torch::kFloat32));
        stds.push_back(dist.std.to(torch::kFloat32));
    }
    const float scale = l.model.detected.vae.scalingFactor;
    return {torch::cat(means) * scale, torch::cat(stds) * scale};
}

void writeModelFolder(Engine::Loaded& l, const FineTuneOptions& o, const std::filesystem::path& dir, int steps) {
    std::filesystem::create_directories(dir);
    l.model.unet->eval();
    l.model.textModule->eval();
    saveSingleFileCheckpoint(l.model, dir / "model.safetensors", DType::F16,
                             {{"easel.fine_tune", "dreambooth"}, {"easel.base_model", l.info.name}});
    auto sidecar = l.sidecar.is_object() ? l.sidecar : nlohmann::json::object();
    const auto& d = l.model.detected;
    sidecar["format"] = "easel-model";
    sidecar["name"] = o.outputName;
    sidecar["description"] = "DreamBooth of " + l.info.name + " on \"" + o.instancePrompt + "\"";
    sidecar["checkpoint"] = "model.safetensors";
    sidecar["unet_num_heads"] = d.unet.numHeads;
    if (d.unet.numHeadChannels > 0) sidecar["unet_num_head_channels"] = d.unet.numHeadChannels;
    sidecar["text_num_heads"] = d.text.numHeads;
    sidecar["vae_scaling_factor"] = d.vae.scalingFactor;
    sidecar["prediction_type"] = d.prediction == PredictionType::VPrediction ? "v_prediction" : "epsilon";
    sidecar["default_width"] = l.info.defaultWidth;
    sidecar["default_height"] = l.info.defaultHeight;
    sidecar["fine_tuned"] = {{"method", "dreambooth"},
                             {"base_model", l.info.name},
                             {"instance_prompt", o.instancePrompt},
                             {"class_prompt", o.classPrompt},
                             {"steps", steps},
                             {"seed", o.seed}};
    if (l.wordTokenizer != nullptr) {
        l.wordTokenizer->save(dir / "tokenizer.json");
        sidecar["tokenizer"] = {{"type", "easel-word"}, {"file", "tokenizer.json"}};
    } else {
        // The CLIP vocabulary the base was read with, beside the new checkpoint (the engine looks there).
        const auto base = l.info.path;
        const auto folder = std::filesystem::is_directory(base) ? base : base.parent_path();
        if (std::filesystem::exists(folder / "tokenizer" / "vocab.json")) {
            std::filesystem::copy(
                folder / "tokenizer", dir / "tokenizer",
                std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
        }
        for (const auto& candidate :
             {folder / "bpe_simple_vocab_16e6.txt.gz", folder.parent_path() / "bpe_simple_vocab_16e6.txt.gz"}) {
            if (std::filesystem::exists(candidate)) {
                std::filesystem::copy_file(candidate, dir / candidate.filename(),
                                           std::filesystem::copy_options::overwrite_existing);
                break;
            }
        }
    }
    std::ofstream(dir / "model.json") << sidecar.dump(2) << '\n';
}

}  // namespace

std::vector<std::string> expandVariants(const std::string& prompt, std::size_t limit) {
    std::vector<std::string> out{""};
    std::size_t at = 0;
    while (at < prompt.size()) {
        const auto open = prompt.find('{', at);
        const auto close = open == std::string::npos ? std::string::npos : prompt.find('}', open);
        if (close == std::string::npos) {  // no (complete) group left: the rest is plain text
            for (auto& o : out) o += prompt.substr(at);
            break;
        }
        std::vector<std::string> choices;
        const auto body = prompt.substr(open + 1, close - open - 1);
        for (std::size_t from = 0;;) {
            const auto bar = body.find('|', from);
            choices.push_back(body.substr(from, bar == std::string::npos ? std::string::npos : bar - from));
            if (bar == std::string::npos) break;
            from = bar + 1;
        }
        std::vector<std::string> next;
        for (const auto& o : out) {
            for (const auto& c : choices) {
                if (next.size() < limit) next.push_back(o + prompt.substr(at, open - at) + c);
            }
        }
        out = std::move(next);
        at = close + 1;
    }
    return out;
}

namespace {

std::vector<std::string> promptWords(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> w;
    for (std::string x; in >> x;) w.push_back(x);
    return w;
}

// The (rare token, class noun) pairs: each class prompt variant that is the instance prompt with one
// word swapped.
std::vector<std::pair<std::string, std::string>> classSwaps(const FineTuneOptions& o) {
    const auto inst = promptWords(o.instancePrompt);
    std::vector<std::pair<std::string, std::string>> swaps;
    for (const auto& variant : expandVariants(o.classPrompt, 64)) {
        const auto cls = promptWords(variant);
        if (inst.size() != cls.size()) continue;
        std::vector<std::size_t> differing;
        for (std::size_t i = 0; i < inst.size(); ++i)
            if (inst[i] != cls[i]) differing.push_back(i);
        if (differing.size() == 1) swaps.emplace_back(inst[differing[0]], cls[differing[0]]);
    }
    return swaps;
}

}  // namespace

std::vector<std::string> classPrompts(const FineTuneOptions& o, const std::vector<FineTuneImage>& images) {
    const auto variants = expandVariants(o.classPrompt, 64);
    std::vector<std::string> out;
    auto add = [&](const std::string& prompt) {
        if (out.size() < 64 && std::find(out.begin(), out.end(), prompt) == out.end()) out.push_back(prompt);
    };
    // Per caption, every variant whose one differing word can be put back.
    const auto swaps = classSwaps(o);
    if (swaps.empty()) {
        for (const auto& v : variants) add(v);
        return out;
    }
    for (const auto& image : images) {
        const auto w = promptWords(image.caption.empty() ? o.instancePrompt : image.caption);
        for (const auto& [token, noun] : swaps) {
            std::string caption;
            for (const auto& x : w) caption += (caption.empty() ? "" : " ") + (x == token ? noun : x);
            add(caption);
        }
    }
    return out;
}

FineTuneResult fineTune(Engine& engine, const std::vector<FineTuneImage>& images, const FineTuneOptions& o,
                        const FineTuneCallback& progress) {
    if (images.empty()) throw GenerationError("fine-tuning needs at least one image");
    if (o.steps < 1) throw GenerationError("fine-tuning needs at least one step");
    if (o.instancePrompt.empty()) throw GenerationError("fine-tuning needs an instance prompt");
    if (o.workDir.empty()) throw GenerationError("fine-tuning needs a work folder");
    std::filesystem::create_directories(o.workDir);
    const auto& info = engine.model();
    if (info.family == "sdxl") throw GenerationError("fine-tuning SDXL models is not supported yet (SD 1.x / 2.x are)");
    auto report = [&](const std::string& stage, int step, int total, double loss) {
        if (progress && !progress({stage, step, total, loss})) throw GenerationCancelledError();
    };

    // 1. Prior preservation: the base model draws the class images (kept in the work folder, so a resumed
    //    run does not draw them again).
    std::vector<Image> classImages;
    std::vector<std::string> classImagePrompts;  // one per class image
    const auto classDir = o.workDir / "class_images";
    if (!o.classPrompt.empty()) {
        const auto prompts = classPrompts(o, images);
        const int count = o.classImages > 0
                              ? o.classImages
                              : std::max({4, 2 * static_cast<int>(images.size()), static_cast<int>(prompts.size())});
        std::filesystem::create_directories(classDir);
        for (int i = 0; i < count; ++i) {
            const auto file = classDir / (std::to_string(i) + ".png");
            classImagePrompts.push_back(prompts[static_cast<std::size_t>(i) % prompts.size()]);
            if (!std::filesystem::exists(file)) {
                GenerationRequest r;
                r.prompt = classImagePrompts.back();
                r.negativePrompt = o.negativePrompt;
                r.seed = static_cast<std::int64_t>((o.seed + 1000003ull * (i + 1)) & 0x7fffffffffffull);
                auto result = engine.generate(r, [&](const GenerationProgress&) {
                    return !progress || progress({"class_images", i, count, 0});
                });
                writePng(file.string() + ".tmp", result.images[0]);
                std::filesystem::rename(file.string() + ".tmp", file);
            }
            classImages.push_back(readImage(file));
            report("class_images", i + 1, count, 0);
        }
    }

    FineTuneResult out;
    engine.withLoaded([&](Engine::Loaded& l) {
        auto& model = l.model;
        const auto s = settingsFor(o, l.sidecar);
        const bool lora = o.method == FineTuneMethod::LoRA;
        if (!lora && l.dtype != torch::kFloat32)
            throw GenerationError("DreamBooth needs the model loaded in fp32 (bf16 runs as autocast)");

        // 2. Captions and latents. DreamBooth teaches the word tokenizer the new words.
        std::vector<std::string> captions;
        for (const auto& im : images) captions.push_back(im.caption.empty() ? o.instancePrompt : im.caption);
        if (!lora && l.wordTokenizer != nullptr) {
            auto texts = captions;
            texts.push_back(o.instancePrompt);
            growVocabulary(l, texts, classSwaps(o));
        }
        std::vector<Image> fitted;
        for (const auto& im : images) fitted.push_back(fitImage(im.image, l.info.defaultWidth, l.info.defaultHeight));
        const auto [instMean, instStd] = encodeImages(l, fitted);
        std::vector<std::vector<int>> instIdRows;
        for (const auto& c : captions) instIdRows.push_back(tokenIds(l, c));
        const auto instIds = idTensor(instIdRows);
        torch::Tensor classMean, classStd, classIds;
        if (!classImages.empty()) {
            std::vector<Image> fittedClass;
            for (const auto& im : classImages)
                fittedClass.push_back(fitImage(im, l.info.defaultWidth, l.info.defaultHeight));
            std::tie(classMean, classStd) = encodeImages(l, fittedClass);
            std::vector<std::vector<int>> rows;
            for (const auto& prompt : classImagePrompts) rows.push_back(tokenIds(l, prompt));
            classIds = idTensor(rows);
        }

        // 3. What trains, and where a previous run stopped.
        StepSettings ss;
        ss.lora = lora;
        ss.loraRank = o.loraRank;
        ss.loraAlpha = o.loraAlpha;
        ss.trainTextEncoder = o.trainTextEncoder;
        ss.learningRate = s.learningRate;
        ss.offsetNoise = s.offsetNoise;
        ss.minSnrGamma = s.minSnrGamma;
        ss.priorWeight = o.priorWeight;
        // bf16 weights (a LoRA's frozen base) run as they are; fp32 ones autocast when bf16 is asked for.
        ss.bf16Autocast = o.precision == "bf16" && l.dtype == torch::kFloat32;
        ss.gradientCheckpointing = o.gradientCheckpointing.value_or(!lora);
        ss.seed = o.seed;
        FineTuneStepper stepper(model, ss);
        const auto statePath = o.workDir / "state.pt";
        int step = loadTrainingState(statePath, stepper.state(), stepper.optimizer());
        out.resumedFrom = step;

        // 4. The loop: an instance batch and as many class images in one forward pass.
        auto lastSave = Clock::now();
        const auto started = Clock::now();
        const int startStep = step;
        double loss = 0;
        for (; step < o.steps; ++step) {
            // Every step's randomness comes from its own generator: a resumed run draws what an
            // uninterrupted one would have.
            auto gen =
                torch::make_generator<torch::CPUGeneratorImpl>(o.seed * 1000003ull + static_cast<std::uint64_t>(step));
            const auto pick = torch::randint(instMean.size(0), {s.batch}, gen, torch::kLong);
            auto x0 = instMean.index_select(0, pick);
            x0 = x0 + instStd.index_select(0, pick) * torch::randn(x0.sizes(), gen, torch::kFloat32);
            auto ids = instIds.index_select(0, pick);
            if (classMean.defined()) {
                const auto cpick = torch::randint(classMean.size(0), {s.batch}, gen, torch::kLong);
                auto c0 = classMean.index_select(0, cpick);
                c0 = c0 + classStd.index_select(0, cpick) * torch::randn(c0.sizes(), gen, torch::kFloat32);
                x0 = torch::cat({x0, c0});
                ids = torch::cat({ids, classIds.index_select(0, cpick)});
            }
            loss = stepper.step(x0, ids, s.batch, gen);
            const bool due =
                o.checkpointEverySteps > 0
                    ? (step + 1) % o.checkpointEverySteps == 0
                    : std::chrono::duration<double>(Clock::now() - lastSave).count() >= o.checkpointEverySeconds;
            if (due && step + 1 < o.steps) {
                saveTrainingState(statePath, stepper.state(), stepper.optimizer(), step + 1);
                lastSave = Clock::now();
            }
            report("training", step + 1, o.steps, loss);
        }
        out.steps = step;
        out.finalLoss = loss;
        const int ran = step - startStep;
        out.secondsPerStep = ran > 0 ? std::chrono::duration<double>(Clock::now() - started).count() / ran : 0;

        // 5. The result.
        report("saving", 0, 1, loss);
        const auto outDir = o.workDir / "output";
        std::filesystem::remove_all(outDir);
        if (lora) {
            std::filesystem::create_directories(outDir);
            out.path = outDir / "lora.safetensors";
            stepper.network()->save(out.path, {{"ss_output_name", o.outputName},
                                               {"ss_sd_model_name", l.info.name},
                                               {"ss_max_train_steps", std::to_string(o.steps)},
                                               {"ss_learning_rate", std::to_string(s.learningRate)},
                                               {"ss_num_train_images", std::to_string(images.size())},
                                               {"easel.instance_prompt", o.instancePrompt}});
        } else {
            writeModelFolder(l, o, outDir, step);
            out.path = outDir;
        }
        report("saving", 1, 1, loss);
    });
    return out;
}

}  // namespace easel::inference::training
