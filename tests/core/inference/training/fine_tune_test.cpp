// Fine-tuning on Easel's built-in model with pictures of a shape it has never seen (a heart), captioned
// with a rare word: the LoRA file is what the adapter loader merges, and an interrupted run resumes to
// the very same result. (How well the result draws hearts is not yet a test: see issue #19's note.)

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <optional>

#include "builtin_model_dir.h"
#include "contact_sheet.h"
#include "inference/adapters/adapter.h"
#include "inference/adapters/adapter_stack.h"
#include "inference/engine.h"
#include "inference/engine_loaded.h"
#include "inference/models/clip_text_model.h"
#include "inference/training/fine_tuner.h"
#include "inference/training/lora_network.h"
#include "inference/training/shapes_dataset.h"
#include "shape_detector.h"
#include "temp_dir.h"

using namespace easel::inference;
using namespace easel::inference::training;
using easel::testing::builtinModelDir;
using easel::testing::ContactSheet;
using easel::testing::detectShapes;

namespace {

constexpr const char* kToken = "zwx";

Image render(const Scene& s) {
    const cv::Mat m = renderScene(s, 64);
    return Image{64, 64, std::vector<std::uint8_t>(m.data, m.data + m.total() * 3)};
}

Scene heart(int color, Position position, int background) {
    Scene s;
    s.shapes.push_back({ShapeKind::Heart, color, ShapeSize::Large, position});
    s.background = background;
    return s;
}

// "a large red heart at the top left on a white background" with the heart named by the rare word.
std::string tokenCaption(const Scene& s) {
    auto caption = s.caption();
    const auto at = caption.find("heart");
    return caption.replace(at, 5, kToken);
}

std::vector<FineTuneImage> trainingHearts() {
    // Six colours, each place and background at least once; the held-out prompts below ask for others.
    const std::vector<Scene> scenes{heart(0, Position::Center, 0),      heart(2, Position::TopLeft, 1),
                                    heart(3, Position::BottomRight, 2), heart(5, Position::TopRight, 0),
                                    heart(1, Position::BottomLeft, 1),  heart(4, Position::Center, 2)};
    std::vector<FineTuneImage> out;
    for (const auto& s : scenes) out.push_back({render(s), tokenCaption(s)});
    return out;
}

FineTuneOptions options(FineTuneMethod method, const std::filesystem::path& workDir) {
    FineTuneOptions o;
    o.method = method;
    o.instancePrompt = std::string("a large red ") + kToken + " in the center on a white background";
    o.classPrompt = "a large red circle in the center on a white background";
    o.steps = 300;
    o.seed = 7;
    o.loraRank = 8;
    o.loraAlpha = 8;
    o.workDir = workDir;
    return o;
}

}  // namespace

TEST(LoRANetwork, ItsFileIsWhatTheAdapterLoaderMerges) {
    Engine engine;
    engine.loadModel(builtinModelDir());
    easel::testing::TempDir dir;
    const auto file = dir.path() / "net.safetensors";
    engine.withLoaded([&](Engine::Loaded& l) {
        torch::NoGradGuard noGrad;
        LoRANetwork net(l.model, 4, 2.0, true, 3);
        EXPECT_GT(net->textEncoderModuleCount(), 0u);
        EXPECT_GT(net->moduleCount(), net->textEncoderModuleCount());
        // Trained-looking factors: up is zero at the start, which would prove nothing.
        auto gen = torch::make_generator<torch::CPUGeneratorImpl>(11);
        for (auto& p : net->named_parameters()) {
            if (p.key().ends_with("_lora_up")) p.value().copy_(torch::randn(p.value().sizes(), gen) * 0.05);
        }
        const auto x = torch::randn({1, 8, 16, 16}, gen);
        const auto t = torch::tensor({500.0f});
        const auto ids = torch::tensor(l.wordTokenizer->encodePadded("a large red circle", 77)).unsqueeze(0);
        const auto base = l.model.unet->forward(x, t, l.model.textEncoder->encode(ids, 1).hidden);
        net->attach();
        const auto ctx = l.model.textEncoder->encode(ids, 1).hidden;
        const auto adapted = l.model.unet->forward(x, t, ctx);
        net->detach();
        net->save(file, {});
        const auto restored = l.model.unet->forward(x, t, l.model.textEncoder->encode(ids, 1).hidden);
        EXPECT_TRUE(torch::equal(base, restored)) << "detach() puts the base weights back";
        EXPECT_GT((adapted - base).abs().max().item<double>(), 1e-3) << "the adapters change the output";

        // The file, merged by the engine's adapter stack (kohya names resolved against the model's keys).
        auto adapter = std::make_shared<const Adapter>(Adapter::open(file));
        EXPECT_EQ(adapter->modules().size(), net->moduleCount());
        AdapterStack stack(l.model);
        stack.apply({{adapter, 1.0, 1.0}});
        const auto mergedCtx = l.model.textEncoder->encode(ids, 1).hidden;
        const auto merged = l.model.unet->forward(x, t, mergedCtx);
        stack.restore();
        // The file holds fp16 factors: agreement to fp16 rounding, far below the change itself.
        const double change = (adapted - base).abs().max().item<double>();
        EXPECT_LT((merged - adapted).abs().max().item<double>(), 0.02 * change);
        EXPECT_LT((mergedCtx - ctx).abs().max().item<double>(), 1e-2);
    });
}

TEST(FineTune, AnInterruptedLoRARunResumesToTheSameFile) {
    easel::testing::TempDir dir;
    auto o = options(FineTuneMethod::LoRA, dir.path() / "a");
    o.steps = 12;
    o.checkpointEverySteps = 5;
    o.classImages = 2;
    const auto images = trainingHearts();
    {
        Engine engine;
        engine.loadModel(builtinModelDir());
        int lastStep = 0;
        EXPECT_THROW(fineTune(engine, images, o,
                              [&](const FineTuneProgress& p) {
                                  if (p.stage == "training") lastStep = p.step;
                                  return !(p.stage == "training" && p.step == 8);
                              }),
                     GenerationCancelledError);
        EXPECT_EQ(lastStep, 8) << "stopped at the step that asked";
    }
    Engine resumedEngine;
    resumedEngine.loadModel(builtinModelDir());
    const auto resumed = fineTune(resumedEngine, images, o);
    EXPECT_EQ(resumed.resumedFrom, 5);
    EXPECT_EQ(resumed.steps, 12);

    auto fresh = o;
    fresh.workDir = dir.path() / "b";
    Engine freshEngine;
    freshEngine.loadModel(builtinModelDir());
    const auto uninterrupted = fineTune(freshEngine, images, fresh);
    EXPECT_EQ(uninterrupted.resumedFrom, 0);
    const auto a = Adapter::open(resumed.path), b = Adapter::open(uninterrupted.path);
    ASSERT_EQ(a.modules().size(), b.modules().size());
    const auto& fa = a.file();
    const auto& fb = b.file();
    int differing = 0;
    for (const auto& va : fa.tensors()) {
        const auto& vb = fb.at(va.name);
        if (va.data.size() != vb.data.size() || !std::equal(va.data.begin(), va.data.end(), vb.data.begin()))
            ++differing;
    }
    EXPECT_EQ(differing, 0) << "a resumed run draws what an uninterrupted one does";
}

TEST(FineTune, ClassImagesFollowEachCaptionWithTheClassWordPutBack) {
    auto o = options(FineTuneMethod::LoRA, {});
    const auto images = trainingHearts();
    const auto prompts = classPrompts(o, images);
    ASSERT_EQ(prompts.size(), 6u);
    EXPECT_EQ(prompts[0], "a large red circle in the center on a white background");
    EXPECT_EQ(prompts[1], "a large blue circle at the top left on a black background");
    // An image without a caption stands for the instance prompt; duplicates are drawn from once.
    auto twice = images;
    twice.push_back({images[0].image, ""});
    twice.push_back({images[0].image, images[0].caption});
    EXPECT_EQ(classPrompts(o, twice).size(), 6u);
    // Not one swapped word: the class prompt alone.
    o.instancePrompt = "a zwx";
    EXPECT_EQ(classPrompts(o, images), std::vector<std::string>{o.classPrompt});
}

// DreamBooth gives the rare word a row of its own, started (as textual inversion's initializer word) at
// the mean of the class nouns it stands for, not at the mean of the whole vocabulary. One step at a
// learning rate too small to move anything shows where it started.
TEST(FineTune, TheRareWordStartsAtItsClassNounsEmbedding) {
    easel::testing::TempDir dir;
    auto o = options(FineTuneMethod::DreamBooth, dir.path() / "work");
    o.classPrompt = "a large red {circle|square} in the center on a white background";
    o.steps = 1;
    o.learningRate = 1e-12;
    o.classImages = 2;
    Engine trainer;
    trainer.loadModel(builtinModelDir());
    const auto result = fineTune(trainer, trainingHearts(), o);
    Engine engine;
    engine.loadModel(result.path);
    engine.withLoaded([&](Engine::Loaded& l) {
        const auto row = [&](const std::string& w) {
            const int id = l.wordTokenizer->encode(w).front();
            EXPECT_NE(id, l.wordTokenizer->unkId()) << w << " is in the vocabulary";
            return id;
        };
        const auto& table = dynamic_cast<CLIPTextModelImpl&>(*l.model.textModule)
                                .text_model->embeddings->token_embedding->weight.detach();
        const auto token = table[row(kToken)];
        const auto nouns = (table[row("circle")] + table[row("square")]) / 2;
        // Equal to the saved file's rounding (float16: 2^-11 relative).
        EXPECT_LE(((token - nouns).abs() - nouns.abs() * (1.0 / 1024) - 1e-7).max().item<double>(), 0.0);
        const auto everything = table.slice(0, 3).mean(0);
        EXPECT_GT((token - everything).abs().max().item<double>(), 1e-2) << "not the vocabulary's mean";
    });
}

TEST(FineTune, ClassPromptVariantsDrawClassImagesOfEachMember) {
    EXPECT_EQ(expandVariants("a {red|blue} {circle|star}"),
              (std::vector<std::string>{"a red circle", "a red star", "a blue circle", "a blue star"}));
    EXPECT_EQ(expandVariants("no groups"), std::vector<std::string>{"no groups"});
    EXPECT_EQ(expandVariants("an {open group"), std::vector<std::string>{"an {open group"});
    EXPECT_EQ(expandVariants("{a|b|c} {d|e|f}", 4).size(), 4u) << "at most the limit";
    EXPECT_EQ(expandVariants("x {|y}"), (std::vector<std::string>{"x ", "x y"}));

    auto o = options(FineTuneMethod::LoRA, {});
    o.classPrompt = "a large red {circle|square} in the center on a white background";
    const auto images = trainingHearts();
    const auto prompts = classPrompts(o, images);
    ASSERT_EQ(prompts.size(), 12u) << "each caption with each member put back";
    EXPECT_EQ(prompts[0], "a large red circle in the center on a white background");
    EXPECT_EQ(prompts[1], "a large red square in the center on a white background");
    EXPECT_EQ(prompts[3], "a large blue square at the top left on a black background");
    // No variant is the instance prompt with one word swapped: the variants themselves.
    o.instancePrompt = "a zwx";
    EXPECT_EQ(classPrompts(o, images),
              (std::vector<std::string>{"a large red circle in the center on a white background",
                                        "a large red square in the center on a white background"}));
}

namespace {

// Held-out hearts: colours, places and backgrounds in combinations the six training pictures do not
// show (each training picture has its own colour; these mix them with other places and backgrounds).
std::vector<Scene> heldOutHearts() {
    return {heart(0, Position::TopRight, 1),   heart(1, Position::Center, 0),  heart(2, Position::BottomLeft, 0),
            heart(3, Position::Center, 1),     heart(4, Position::TopLeft, 0), heart(5, Position::BottomRight, 1),
            heart(0, Position::BottomLeft, 2), heart(2, Position::Center, 2),  heart(3, Position::TopLeft, 0),
            heart(5, Position::Center, 1)};
}

struct Quality {
    int hearts = 0, heartPairs = 0, prior = 0, priorPairs = 0;
};

// Hearts drawn where asked (shape, colour and place read by the detector) over held-out heart prompts
// x seeds 1, 2; and the built-in model's own held-out test (prompts without the token) on the result.
Quality measure(Engine& engine, const std::optional<LoraRequest>& lora, const std::string& sheetName) {
    Quality q;
    ContactSheet sheet;
    auto draw = [&](const std::string& prompt, std::int64_t seed) {
        GenerationRequest r;
        r.prompt = prompt;
        r.seed = seed;
        if (lora) r.loras.push_back(*lora);
        const auto image = engine.generate(r).images[0];
        sheet.add(image);
        return detectShapes(image);
    };
    for (const auto& s : heldOutHearts()) {
        sheet.add(render(s));
        for (std::int64_t seed : {1, 2}) {
            const auto d = draw(tokenCaption(s), seed);
            ++q.heartPairs;
            const bool ok = !d.shapes.empty() && easel::testing::matches(d.shapes[0], s.shapes[0]);
            q.hearts += ok;
            if (!ok) {
                std::cout << "  missed: " << tokenCaption(s) << " (seed " << seed << "): ";
                if (d.shapes.empty()) std::cout << "nothing";
                for (const auto& got : d.shapes)
                    std::cout << shapeName(got.kind) << " " << kShapeColors[static_cast<std::size_t>(got.color)].name
                              << " " << positionPhrase(got.position) << "; ";
                std::cout << std::endl;
            }
        }
    }
    for (const auto& prompt : heldOutCaptions()) {
        const auto want = *parseCaption(prompt);
        for (std::int64_t seed : {1, 2}) {
            const auto d = draw(prompt, seed);
            ++q.priorPairs;
            q.prior += !d.shapes.empty() && easel::testing::matches(d.shapes[0], want.shapes[0]);
        }
    }
    sheet.save(sheetName, 6);
    std::cout << sheetName << ": hearts " << q.hearts << "/" << q.heartPairs << ", prior " << q.prior << "/"
              << q.priorPairs << std::endl;
    return q;
}

double envOr(const char* name, double fallback) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::atof(v) : fallback;
}

// The settings the quality tests train with; FT_* variables override them for experiments.
FineTuneOptions qualityOptions(FineTuneMethod method, const std::filesystem::path& workDir) {
    auto o = options(method, workDir);
    o.classPrompt = "a large red {circle|square|triangle|star} in the center on a white background";
    o.steps = static_cast<int>(envOr("FT_STEPS", 300));
    o.learningRate = envOr("FT_LR", method == FineTuneMethod::LoRA ? 1e-3 : 2e-4);
    o.loraRank = static_cast<int>(envOr("FT_RANK", 8));
    o.loraAlpha = o.loraRank;
    o.priorWeight = envOr("FT_PRIOR", 1.0);
    o.trainTextEncoder = envOr("FT_TE", 1) != 0;
    if (const char* c = std::getenv("FT_CLASS")) o.classPrompt = c;
    o.classImages = static_cast<int>(envOr("FT_CLASS_IMAGES", 0));
    o.precision = "fp32";
    return o;
}

// Trains on the six hearts, then measures the result on a fresh engine: DreamBooth's model folder, or
// the built-in model with the LoRA file applied.
Quality trainAndMeasure(FineTuneMethod method, const std::string& sheetName) {
    easel::testing::TempDir dir;
    const char* keep = std::getenv("FT_WORK");  // experiments: keep (and resume) the work folder there
    const auto o = qualityOptions(method, keep != nullptr ? keep : dir.path() / "work");
    Engine trainer;
    trainer.loadModel(builtinModelDir());
    const auto result = fineTune(trainer, trainingHearts(), o);
    const bool lora = method == FineTuneMethod::LoRA;
    Engine engine;
    engine.loadModel(lora ? builtinModelDir() : result.path);
    return measure(engine, lora ? std::optional(LoraRequest{"hearts", result.path, 1.0, 1.0}) : std::nullopt,
                   sheetName);
}

}  // namespace

// Issue #19's bar: >= 80% of held-out heart prompt/seed pairs drawn as asked, and the built-in model's
// own held-out test (>= 85%) still passing on the result. Not met yet (see the note), so these
// are disabled: run them with --gtest_also_run_disabled_tests (FT_* variables change the settings).
TEST(FineTuneQuality, DISABLED_DreamBoothLearnsAHeartAndKeepsThePrior) {
    const auto q = trainAndMeasure(FineTuneMethod::DreamBooth, "fine_tune_dreambooth_hearts.png");
    EXPECT_GE(q.hearts, q.heartPairs * 8 / 10);
    EXPECT_GE(q.prior, q.priorPairs * 85 / 100);
}

TEST(FineTuneQuality, DISABLED_LoRALearnsAHeartAndKeepsThePrior) {
    const auto q = trainAndMeasure(FineTuneMethod::LoRA, "fine_tune_lora_hearts.png");
    EXPECT_GE(q.hearts, q.heartPairs * 8 / 10);
    EXPECT_GE(q.prior, q.priorPairs * 85 / 100);
}
