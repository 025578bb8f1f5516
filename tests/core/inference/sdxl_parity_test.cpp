// SDXL parity with the reference implementation (Stability-AI generative-models, open_clip,
// transformers, diffusers) on the tiny SDXL-layout checkpoint in $EASEL_REFERENCE_DIR/sdxl: detection,
// both text encoders, the size/crop conditioning, the UNet with label_emb, the VAE, the diffusers
// folder and a CFG Euler txt2img run. Every size and setting comes from sdxl/config.json or the tensor
// shapes, never from this file; tolerances are the README's (float32 against the _f64 vectors).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/pipelines/conditioner.h"
#include "inference/pipelines/denoising_loop.h"
#include "inference/pipelines/pipeline.h"
#include "inference/pipelines/sdxl_conditioning.h"
#include "inference/tokenizer/clip_tokenizer.h"
#include "inference/tokenizer/prompt_parser.h"
#include "reference_models.h"
#include "reference_sdxl_folder.h"
#include "temp_dir.h"

using namespace easel::inference;
using easel::testing::parityTolerance;
using easel::testing::ReferenceVectors;

namespace {

// "sdxl/" in the default set; "" when $EASEL_REFERENCE_DIR is an SDXL set itself.
const std::string kSet = easel::testing::referenceSDXLSet();

std::filesystem::path vocabularyPath() { return easel::testing::referenceSDXLVocabulary(); }

nlohmann::json sdxlConfig() { return easel::testing::referenceJson(kSet + "config.json"); }

// What the weights cannot say (head counts, activations), from the set's config.json.
ModelOverrides sdxlOverrides(const nlohmann::json& /*cfg*/) { return easel::testing::referenceSDXLOverrides(); }

std::filesystem::path checkpointPath(const nlohmann::json& cfg) {
    return easel::testing::referenceFile(kSet + cfg.at("checkpoint").at("file").get<std::string>());
}

// Loaded once: every test only reads it.
StableDiffusionModel& sdxlModel() {
    static StableDiffusionModel model = [] {
        const auto cfg = sdxlConfig();
        return loadSingleFileCheckpoint(checkpointPath(cfg), sdxlOverrides(cfg));
    }();
    return model;
}

int sizeEmbeddingDim(const nlohmann::json& cfg) {
    // The embedders after the two text encoders are the size embedders; they share one outdim.
    for (const auto& e : cfg.at("conditioner").at("emb_models")) {
        if (e.at("params").contains("outdim")) return e["params"]["outdim"].get<int>();
    }
    throw std::runtime_error("config.json names no ConcatTimestepEmbedderND outdim");
}

torch::Tensor pairOf(const nlohmann::json& v) {
    const auto p = v.get<std::vector<float>>();
    return torch::tensor(p, torch::kFloat32).unsqueeze(0);
}

std::string stepKey(int i, const char* name) { return "pipe.step" + std::to_string(i) + "." + name; }

// A stochastic scheduler's draws, stored as pipe.step<i>.noise by a set made with one.
NoiseSource storedNoise(const ReferenceVectors& v) {
    return [&v](const torch::Tensor& like, int stepIndex) {
        const auto key = stepKey(stepIndex, "noise");
        if (!v.has(key)) throw std::runtime_error("the scheduler draws noise but the vectors hold no " + key);
        return v[key].to(like.options());
    };
}

}  // namespace

TEST(SDXLDetection, ConfigComesFromTheWeights) {
    const auto cfg = sdxlConfig();
    const auto file = SafetensorsFile::open(checkpointPath(cfg));
    const auto m = detectSingleFile(file, sdxlOverrides(cfg));
    const auto& p = cfg["unet"]["params"];
    EXPECT_EQ(m.family, ModelFamily::SDXL);
    EXPECT_EQ(m.describe().rfind("SDXL", 0), 0u) << m.describe();
    EXPECT_EQ(m.unet.modelChannels, p["model_channels"].get<int>());
    EXPECT_EQ(m.unet.inChannels, p["in_channels"].get<int>());
    EXPECT_EQ(m.unet.channelMult, p["channel_mult"].get<std::vector<int>>());
    EXPECT_EQ(m.unet.numResBlocks, p["num_res_blocks"].get<int>());
    EXPECT_EQ(m.unet.contextDim, p["context_dim"].get<int>());
    EXPECT_EQ(m.unet.admInChannels, p["adm_in_channels"].get<int>());
    EXPECT_EQ(m.unet.linearProjection, p["use_linear_in_transformer"].get<bool>());
    std::vector<int> levels;
    for (int r : p["attention_resolutions"].get<std::vector<int>>()) levels.push_back(static_cast<int>(std::log2(r)));
    std::sort(levels.begin(), levels.end());
    EXPECT_EQ(m.unet.attentionLevels, levels);
    const auto depth = p["transformer_depth"].get<std::vector<int>>();
    for (int level : levels) EXPECT_EQ(m.unet.depthAt(level), depth.at(static_cast<std::size_t>(level))) << level;
    EXPECT_EQ(m.unet.middleTransformerDepth, depth.back());
    if (p.value("num_head_channels", -1) > 0) {
        EXPECT_EQ(m.unet.numHeadChannels, p["num_head_channels"].get<int>());
    } else {
        EXPECT_EQ(m.unet.numHeads, p["num_heads"].get<int>());
    }

    const auto& t1 = cfg["text_encoder"]["config"];
    EXPECT_EQ(m.text.kind, TextEncoderKind::CLIP);
    EXPECT_EQ(m.text.hiddenSize, t1["hidden_size"].get<int>());
    EXPECT_EQ(m.text.numLayers, t1["num_hidden_layers"].get<int>());
    EXPECT_EQ(m.text.intermediateSize, t1["intermediate_size"].get<int>());
    EXPECT_EQ(m.text.vocabSize, t1["vocab_size"].get<int>());
    EXPECT_FALSE(m.text.normalizeHidden);
    ASSERT_TRUE(m.text2.has_value());
    const auto& t2 = cfg["text_encoder_2"];
    EXPECT_EQ(m.text2->kind, TextEncoderKind::OpenCLIP);
    EXPECT_EQ(m.text2->hiddenSize, t2["open_clip_text_cfg"]["width"].get<int>());
    EXPECT_EQ(m.text2->numLayers, t2["open_clip_text_cfg"]["layers"].get<int>());
    EXPECT_EQ(m.text2->numHeads, t2["open_clip_text_cfg"]["heads"].get<int>());
    EXPECT_EQ(m.text2->projectionDim, t2["embed_dim"].get<int>());
    EXPECT_EQ(m.text2->quickGELU, t2.value("quick_gelu", false));
    EXPECT_TRUE(m.text2->projectedPooled);
    EXPECT_EQ(m.sizeEmbeddingDim, sizeEmbeddingDim(cfg));

    const auto& dd = cfg["vae"]["ddconfig"];
    EXPECT_EQ(m.vae.ch, dd["ch"].get<int>());
    EXPECT_EQ(m.vae.chMult, dd["ch_mult"].get<std::vector<int>>());
    EXPECT_FLOAT_EQ(m.vae.scalingFactor, cfg["vae"]["derived"]["scale_factor"].get<float>());
}

TEST(SDXLDetection, RealSDXLDefaultsToHeadsOf64) {
    // Without overrides, what sd_xl_base.yaml fixes: num_head_channels 64, text heads of 64.
    const auto cfg = sdxlConfig();
    const auto file = SafetensorsFile::open(checkpointPath(cfg));
    const auto m = detectSingleFile(file);
    EXPECT_EQ(m.unet.numHeadChannels, 64);
    EXPECT_EQ(m.text2->numHeads, std::max(1, m.text2->hiddenSize / 64));
}

TEST(SDXLParity, UNetWithLabelEmbedding) {
    auto& model = sdxlModel();
    torch::NoGradGuard noGrad;
    ReferenceVectors v(kSet + "unet_vectors.safetensors");
    int cases = 0;
    const auto cfg = sdxlConfig();
    for (const auto& c : cfg["inputs"]["unet_cases"]) {
        const auto name = c["case"].get<std::string>();
        SCOPED_TRACE("case " + name);
        ++cases;
        const auto t = v[name + ".timesteps"];
        const auto sinusoidal = timestepEmbedding(t, model.detected.unet.modelChannels);
        EXPECT_TENSOR_NEAR(sinusoidal, v[name + ".t_sinusoidal_f64"],
                           parityTolerance(v[name + ".t_sinusoidal_f64"], 5e-5));
        EXPECT_TENSOR_NEAR(model.unet->time_embed->forward(sinusoidal), v[name + ".time_embed_f64"],
                           parityTolerance(v[name + ".time_embed_f64"], 5e-5));
        const auto labelEmb = model.unet->labelEmbedding(v[name + ".y"]);
        EXPECT_TENSOR_NEAR(labelEmb, v[name + ".label_emb_f64"], parityTolerance(v[name + ".label_emb_f64"], 5e-5));
        const auto eps = model.unet->forward(v[name + ".x"], t, v[name + ".context"], v[name + ".y"]);
        EXPECT_TENSOR_NEAR(eps, v[name + ".eps_f64"], parityTolerance(v[name + ".eps_f64"], 2e-5));
    }
    EXPECT_GT(cases, 0);
    EXPECT_THROW(model.unet->forward(v["a.x"], v["a.timesteps"], v["a.context"]), std::invalid_argument);
}

TEST(SDXLParity, TextEncoder1IsHiddenStatesMinus2WithoutFinalNorm) {
    auto& model = sdxlModel();
    torch::NoGradGuard noGrad;
    ReferenceVectors v(kSet + "text_encoder_vectors.safetensors");
    const auto out = model.textEncoder->encode(v["input_ids"], 1);
    EXPECT_TENSOR_NEAR(out.hidden, v["penultimate_hidden_state_f64"],
                       parityTolerance(v["penultimate_hidden_state_f64"]));
}

TEST(SDXLParity, TextEncoder2PenultimateAndProjectedPooled) {
    auto& model = sdxlModel();
    torch::NoGradGuard noGrad;
    ReferenceVectors v(kSet + "text_encoder_2_vectors.safetensors");
    const auto out = model.textEncoder2->encode(v["input_ids"], 1);
    EXPECT_TENSOR_NEAR(out.hidden, v["penultimate_f64"], parityTolerance(v["penultimate_f64"]));
    EXPECT_TENSOR_NEAR(out.pooled, v["text_embeds_f64"], parityTolerance(v["text_embeds_f64"]));
}

TEST(SDXLParity, ConditionerContextAndVector) {
    auto& model = sdxlModel();
    const auto cfg = sdxlConfig();
    torch::NoGradGuard noGrad;
    ReferenceVectors v(kSet + "conditioner_vectors.safetensors");
    // Encoder 2's ids are encoder 1's with open_clip's padding.
    const auto eos = cfg["text_encoder"]["config"]["eos_token_id"].get<std::int64_t>();
    EXPECT_TRUE(torch::equal(openClipPadding(v["input_ids_1"], eos), v["input_ids_2"]));
    const auto text = encodeSDXLText(model, v["input_ids_1"], v["input_ids_2"], 1);
    EXPECT_TENSOR_NEAR(text.context, v["crossattn_f64"], parityTolerance(v["crossattn_f64"]));
    const int dim = model.detected.sizeEmbeddingDim;
    for (const std::string part : {"original_size_as_tuple", "crop_coords_top_left", "target_size_as_tuple"}) {
        SCOPED_TRACE(part);
        EXPECT_TENSOR_NEAR(sizePairEmbedding(v[part], dim), v[part + ".emb_f64"], 2e-4);
    }
    const auto vector =
        sdxlVector(text.pooled, v["original_size_as_tuple"], v["crop_coords_top_left"], v["target_size_as_tuple"], dim);
    EXPECT_TENSOR_NEAR(vector, v["vector_f64"], 2e-4);
    // The struct form, row by row, from config.json's rows.
    const auto& rows = cfg["inputs"]["size_conditioning_rows"];
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        // sgm's pairs are (height, width) and (top, left).
        const easel::SizeConditioning s{.originalWidth = r["original_size"][1].get<int>(),
                                        .originalHeight = r["original_size"][0].get<int>(),
                                        .cropTop = r["crop_coords_top_left"][0].get<int>(),
                                        .cropLeft = r["crop_coords_top_left"][1].get<int>(),
                                        .targetWidth = r["target_size"][1].get<int>(),
                                        .targetHeight = r["target_size"][0].get<int>()};
        const auto row = static_cast<std::int64_t>(i);
        EXPECT_TENSOR_NEAR(sdxlVector(text.pooled.narrow(0, row, 1), s, dim), v["vector_f64"].narrow(0, row, 1), 2e-4);
    }
}

TEST(SDXLParity, VAEWithSDXLScale) {
    auto& model = sdxlModel();
    torch::NoGradGuard noGrad;
    ReferenceVectors v(kSet + "vae_vectors.safetensors");
    const auto enc = model.vae->encode(v["encode.image"]);
    EXPECT_TENSOR_NEAR(enc.mean, v["encode.mean_f64"], parityTolerance(v["encode.mean_f64"]));
    EXPECT_TENSOR_NEAR(enc.logvar, v["encode.logvar_f64"], parityTolerance(v["encode.logvar_f64"]));
    int decodes = 0;
    for (int i = 0; v.has("decode" + std::to_string(i) + ".z"); ++i, ++decodes) {
        const std::string d = "decode" + std::to_string(i);
        EXPECT_TENSOR_NEAR(model.vae->decode(v[d + ".z"]), v[d + ".image_f64"], parityTolerance(v[d + ".image_f64"]));
    }
    EXPECT_GT(decodes, 0);
}

TEST(SDXLLoading, DiffusersFolderGivesTheSameWeights) {
    const auto cfg = sdxlConfig();
    auto& single = sdxlModel();
    auto folder =
        loadDiffusersFolder(easel::testing::referenceFile(kSet + cfg["diffusers"]["folder"].get<std::string>()));
    EXPECT_EQ(folder.detected.family, ModelFamily::SDXL);
    EXPECT_EQ(folder.detected.unet.numHeadChannels, single.detected.unet.numHeadChannels);
    EXPECT_EQ(folder.detected.text.numHeads, single.detected.text.numHeads);
    ASSERT_TRUE(folder.detected.text2.has_value());
    EXPECT_EQ(folder.detected.text2->numHeads, single.detected.text2->numHeads);
    EXPECT_FLOAT_EQ(folder.detected.vae.scalingFactor, single.detected.vae.scalingFactor);
    auto same = [](torch::nn::Module& a, torch::nn::Module& b) {
        const auto pa = a.named_parameters(true);
        const auto pb = b.named_parameters(true);
        ASSERT_EQ(pa.size(), pb.size());
        for (const auto& item : pa) {
            if (item.key() == "logit_scale") continue;  // open_clip's, unused; diffusers does not keep it
            const auto* other = pb.find(item.key());
            ASSERT_NE(other, nullptr) << item.key();
            EXPECT_TRUE(torch::equal(item.value(), *other)) << item.key();
        }
    };
    same(*folder.unet, *single.unet);
    same(*folder.vae, *single.vae);
    same(*folder.textModule, *single.textModule);
    ASSERT_TRUE(folder.textModule2);
    same(*folder.textModule2, *single.textModule2);

    torch::NoGradGuard noGrad;
    ReferenceVectors v(kSet + "text_encoder_2_vectors.safetensors");
    const auto a = folder.textEncoder2->encode(v["input_ids"], 1);
    const auto b = single.textEncoder2->encode(v["input_ids"], 1);
    EXPECT_TRUE(torch::equal(a.hidden, b.hidden));
    EXPECT_TRUE(torch::equal(a.pooled, b.pooled));
    ReferenceVectors u(kSet + "unet_vectors.safetensors");
    EXPECT_TRUE(torch::equal(folder.unet->forward(u["a.x"], u["a.timesteps"], u["a.context"], u["a.y"]),
                             single.unet->forward(u["a.x"], u["a.timesteps"], u["a.context"], u["a.y"])));
}

namespace {

struct SDXLPipelineRun {
    nlohmann::json section;
    std::unique_ptr<Scheduler> scheduler;
    torch::Tensor condVector, uncondVector;  // computed by Easel
    torch::Tensor context;                   // conditional context, computed by Easel
};

SDXLPipelineRun sdxlPipeline(StableDiffusionModel& model, const ReferenceVectors& v) {
    const auto cfg = sdxlConfig();
    SDXLPipelineRun run;
    run.section = cfg.at("pipeline");
    run.scheduler =
        makeScheduler(easel::testing::schedulerKindOf(cfg["scheduler"]["diffusers_class"].get<std::string>()),
                      easel::testing::schedulerConfigOf(cfg["scheduler"]["given_config"]));
    // Row 1 is the prompt; row 0 the negative prompt, whose text part SDXL base zeroes.
    const auto text =
        encodeSDXLText(model, v["pipe.input_ids_1"].narrow(0, 1, 1), v["pipe.input_ids_2"].narrow(0, 1, 1), 1);
    run.context = text.context;
    const int dim = model.detected.sizeEmbeddingDim;
    const auto& s = run.section;
    run.condVector = sdxlVector(text.pooled, pairOf(s["original_size"]), pairOf(s["crop_coords_top_left"]),
                                pairOf(s["target_size"]), dim);
    run.uncondVector = sdxlVector(torch::zeros_like(text.pooled), pairOf(s["original_size"]),
                                  pairOf(s["crop_coords_top_left"]), pairOf(s["target_size"]), dim);
    return run;
}

}  // namespace

TEST(SDXLPipelineParity, Txt2ImgCfgEulerStepByStep) {
    auto& model = sdxlModel();
    torch::NoGradGuard noGrad;
    const auto file = sdxlConfig()["pipeline"]["file"].get<std::string>();
    ReferenceVectors v(kSet + file);
    auto run = sdxlPipeline(model, v);
    const auto refContext = v["pipe.context"].chunk(2);
    const auto refVector = v["pipe.vector"].chunk(2);
    EXPECT_TENSOR_NEAR(run.context, refContext[1], parityTolerance(refContext[1]));
    EXPECT_EQ(refContext[0].abs().max().item<float>(), 0.0f);  // the zeroed unconditional text
    EXPECT_TENSOR_NEAR(run.condVector, refVector[1], 2e-4);
    EXPECT_TENSOR_NEAR(run.uncondVector, refVector[0], 2e-4);

    const int steps = run.section["num_inference_steps"].get<int>();
    const float g = run.section["guidance_scale"].get<float>();
    auto& scheduler = *run.scheduler;
    scheduler.setTimesteps(steps);
    const auto refTimesteps = v["pipe.timesteps"];
    ASSERT_EQ(static_cast<std::int64_t>(scheduler.timesteps().size()), refTimesteps.numel());
    EXPECT_TENSOR_NEAR(torch::tensor(scheduler.timesteps()), refTimesteps, 1e-3);
    EXPECT_NEAR(scheduler.initNoiseSigma(), v["pipe.init_noise_sigma"].item<float>(), 1e-5);

    auto latents = v["pipe.noise"] * scheduler.initNoiseSigma();
    EXPECT_TENSOR_NEAR(latents, v["pipe.latents_init"], parityTolerance(v["pipe.latents_init"], 2e-6));
    for (int i = 0; i < refTimesteps.numel(); ++i) {
        SCOPED_TRACE("step " + std::to_string(i));
        const auto modelInput = scheduler.scaleModelInput(torch::cat({latents, latents}), i);
        EXPECT_TENSOR_NEAR(modelInput, v[stepKey(i, "model_input")], parityTolerance(v[stepKey(i, "model_input")]));
        const auto t = torch::full({2}, scheduler.timesteps()[static_cast<std::size_t>(i)]);
        // The stored inputs, so that each step is judged on its own.
        auto eps = model.unet->forward(v[stepKey(i, "model_input")], t, v["pipe.context"], v["pipe.vector"]).chunk(2);
        EXPECT_TENSOR_NEAR(eps[0], v[stepKey(i, "eps_uncond")], parityTolerance(v[stepKey(i, "eps_uncond")], 2e-5));
        EXPECT_TENSOR_NEAR(eps[1], v[stepKey(i, "eps_cond")], parityTolerance(v[stepKey(i, "eps_cond")], 2e-5));
        const auto cfgEps = eps[0] + g * (eps[1] - eps[0]);
        EXPECT_TENSOR_NEAR(cfgEps, v[stepKey(i, "eps_cfg")],
                           (std::abs(1.0f - g) + g) * parityTolerance(v[stepKey(i, "eps_cond")], 2e-5));
        latents = scheduler.step(v[stepKey(i, "eps_cfg")], i, latents, storedNoise(v));
        const auto ref = v[stepKey(i, "latents")];
        EXPECT_TENSOR_NEAR(latents, ref, 1e-5 * std::max(1.0, ref.abs().max().item<double>()));
        latents = ref;
    }
    const float scale = run.section["vae_scale_factor"].get<float>();
    EXPECT_FLOAT_EQ(model.detected.vae.scalingFactor, scale);
    const auto decoded = model.vae->decode(latents / model.detected.vae.scalingFactor);
    EXPECT_TENSOR_NEAR(decoded, v["pipe.decoded"], parityTolerance(v["pipe.decoded"]));
    const auto image01 = (decoded / 2 + 0.5).clamp(0, 1);
    EXPECT_TENSOR_NEAR(image01, v["pipe.image_0_1"], 1e-5);
    const auto u8 = (image01 * 255).round().to(torch::kUInt8).permute({0, 2, 3, 1});
    EXPECT_LE(easel::testing::maxAbsDiff(u8, v["pipe.image_uint8_nhwc"]), 1.0);
}

TEST(SDXLPipelineParity, DenoiseLoopFromEaselsOwnConditioning) {
    auto& model = sdxlModel();
    torch::NoGradGuard noGrad;
    const auto file = sdxlConfig()["pipeline"]["file"].get<std::string>();
    ReferenceVectors v(kSet + file);
    auto run = sdxlPipeline(model, v);
    DenoiseInputs in;
    in.cond = run.context;
    in.uncond = torch::zeros_like(run.context);
    in.condY = run.condVector;
    in.uncondY = run.uncondVector;
    in.noise = v["pipe.noise"];
    in.guidanceScale = run.section["guidance_scale"].get<float>();
    in.numInferenceSteps = run.section["num_inference_steps"].get<int>();
    in.ancestralNoise = storedNoise(v);
    const auto latents = denoise(model.unet, *run.scheduler, in);
    const auto ref = v[stepKey(in.numInferenceSteps - 1, "latents")];
    // The README's float32-vs-float64 drift of the whole run, per step.
    EXPECT_TENSOR_NEAR(latents, ref, 1e-5 * in.numInferenceSteps * std::max(1.0, ref.abs().max().item<double>()));
    const auto decoded = model.vae->decode(latents / model.detected.vae.scalingFactor);
    const auto u8 = ((decoded / 2 + 0.5).clamp(0, 1) * 255).round().to(torch::kUInt8).permute({0, 2, 3, 1});
    EXPECT_LE(easel::testing::maxAbsDiff(u8, v["pipe.image_uint8_nhwc"]), 1.0);
}

TEST(SDXLEngine, LoadsAnSDXLCheckpointAndGenerates) {
    const auto cfg = sdxlConfig();
    const auto o = sdxlOverrides(cfg);
    const auto imageShape = cfg["pipeline"]["image_shape"].get<std::vector<int>>();  // [1, 3, H, W]
    easel::testing::TempDir dir;
    const auto root = dir.path() / "tiny-sdxl";
    std::filesystem::create_directories(root);
    // The tiny encoders' vocabulary is not CLIP's: a word tokenizer small enough for it.
    dir.write(
        "tiny-sdxl/tokenizer.json",
        R"({"type": "easel-word", "vocab": ["<|startoftext|>", "<|endoftext|>", "<|unk|>", "a", "red", "circle"]})");
    nlohmann::json sidecar = {{"checkpoint", checkpointPath(cfg).string()},
                              {"text_num_heads", *o.textNumHeads},
                              {"text2_num_heads", *o.text2NumHeads},
                              {"default_width", imageShape.at(3)},
                              {"default_height", imageShape.at(2)},
                              {"default_steps", 2},
                              {"default_scheduler", "Euler"},
                              {"tokenizer", {{"type", "easel-word"}, {"file", "tokenizer.json"}}}};
    if (o.unetNumHeadChannels) {
        sidecar["unet_num_head_channels"] = *o.unetNumHeadChannels;
    } else {
        sidecar["unet_num_heads"] = *o.unetNumHeads;
    }
    dir.write("tiny-sdxl/model.json", sidecar.dump());
    Engine engine;
    engine.loadModel(root);
    EXPECT_EQ(engine.model().family, "sdxl");
    EXPECT_NE(engine.model().description.find("SDXL"), std::string::npos) << engine.model().description;
    GenerationRequest r;
    r.prompt = "a red circle";
    r.seed = 7;
    const auto first = engine.generate(r);
    ASSERT_EQ(first.images.size(), 1u);
    EXPECT_EQ(first.images[0].width, imageShape.at(3));
    EXPECT_EQ(first.images[0].height, imageShape.at(2));
    EXPECT_EQ(engine.generate(r).images[0].rgb, first.images[0].rgb);  // the seed reproduces
    // The size conditioning reaches the UNet, through the ResBlocks whose GroupNorm groups hold more
    // than one channel (with one channel per group the added embedding is normalised away).
    const auto& unet = cfg["unet"]["params"];
    const auto mult = unet["channel_mult"].get<std::vector<int>>();
    if (unet["model_channels"].get<int>() * *std::max_element(mult.begin(), mult.end()) > 32) {
        r.sizes.originalWidth = 4 * imageShape.at(3);
        r.sizes.originalHeight = 4 * imageShape.at(2);
        EXPECT_NE(engine.generate(r).images[0].rgb, first.images[0].rgb);
    }
    // Without guidance (Turbo-style: one UNet pass per step, no unconditional branch), and img2img
    // through the VAE encoder with SDXL's latent scale.
    GenerationRequest unguided;
    unguided.prompt = "a red circle";
    unguided.seed = 7;
    unguided.guidanceScale = 0;
    EXPECT_EQ(engine.generate(unguided).images.size(), 1u);
    GenerationRequest img2img = unguided;
    img2img.initImage = first.images[0];
    img2img.strength = 0.5f;
    const auto changed = engine.generate(img2img);
    ASSERT_EQ(changed.images.size(), 1u);
    EXPECT_EQ(changed.images[0].width, first.images[0].width);
}

TEST(SDXLConditioner, EmptyNegativePromptZeroesTheTextButNotTheSizes) {
    auto& model = sdxlModel();
    torch::NoGradGuard noGrad;
    const auto words = WordTokenizer::fromWords({"a", "red", "circle"});
    const Conditioner conditioner(model, nullptr, &words, torch::kCPU);
    const auto zeroed = conditioner.encode("a red circle", "", 1, 3);
    const int width = model.detected.text.hiddenSize + model.detected.text2->hiddenSize;
    EXPECT_EQ(zeroed.cond.size(2), width);
    EXPECT_EQ(zeroed.condPooled.size(1), model.detected.text2->projectionDim);
    EXPECT_GT(zeroed.cond.abs().max().item<float>(), 0.0f);
    EXPECT_EQ(zeroed.uncond.abs().max().item<float>(), 0.0f);
    EXPECT_EQ(zeroed.uncondPooled.abs().max().item<float>(), 0.0f);
    // Any other negative prompt is encoded, as diffusers does for an explicit one.
    const auto encoded = conditioner.encode("a red circle", "circle", 1, 3);
    EXPECT_GT(encoded.uncond.abs().max().item<float>(), 0.0f);
    EXPECT_GT(encoded.uncondPooled.abs().max().item<float>(), 0.0f);
    EXPECT_TRUE(torch::equal(encoded.cond, zeroed.cond));
}

TEST(SDXLConditioner, OneCLIPTokenizationFeedsBothEncoders) {
    // The real tokenizers: CLIP-L's pads with EOS, open_clip's with 0; the same BPE ids otherwise.
    const auto clip = CLIPTokenizer::fromBpeGz(vocabularyPath());
    const auto ref = easel::testing::referenceJson(kSet + "tokenizer_reference.json");
    const auto eos = sdxlConfig()["text_encoder"]["config"]["eos_token_id"].get<std::int64_t>();
    int checked = 0;
    for (const auto& p : ref.at("prompts")) {
        SCOPED_TRACE(p["text"].get<std::string>());
        auto asTensor = [](const nlohmann::json& ids) {
            return torch::tensor(ids.get<std::vector<std::int64_t>>(), torch::kLong).unsqueeze(0);
        };
        // The tiny encoders' ids, mapped from the real ones.
        EXPECT_TRUE(
            torch::equal(openClipPadding(asTensor(p["tiny_input_ids_1"]), eos), asTensor(p["tiny_input_ids_2"])));
        if (p.value("truncated", false)) continue;  // Easel chunks long prompts where the reference truncates
        const auto chunks = tokenizeWeighted(clip, p["text"].get<std::string>(), clip.eosId()).chunks;
        ASSERT_EQ(chunks.size(), 1u);
        const auto ids =
            torch::tensor(std::vector<std::int64_t>(chunks[0].begin(), chunks[0].end()), torch::kLong).unsqueeze(0);
        EXPECT_TRUE(torch::equal(ids, asTensor(p["clip_l_input_ids"])));
        EXPECT_TRUE(torch::equal(openClipPadding(ids, clip.eosId()), asTensor(p["open_clip_input_ids"])));
        ++checked;
    }
    EXPECT_GT(checked, 0);
}

TEST(SDXLPreview, LatentPreviewsUseSDXLsOwnMapWithItsOffset) {
    // A zero latent is mid-grey through SD 1.x's map (it has no offset) and the offset colour through
    // SDXL's: R above grey, G and B at or just below it (ComfyUI's SDXL factors: 0.1084, -0.0175, -0.0011).
    const auto zero = torch::zeros({1, 4, 2, 3});
    const auto sd = latentPreview(zero, ModelFamily::SD1);
    const auto xl = latentPreview(zero, ModelFamily::SDXL);
    ASSERT_EQ(xl.width, 3);
    ASSERT_EQ(xl.height, 2);
    for (std::size_t i = 0; i < sd.rgb.size(); ++i) EXPECT_EQ(sd.rgb[i], 128) << i;
    const int expected[] = {141, 125, 127};  // round((offset / 2 + 0.5) * 255)
    for (std::size_t i = 0; i < xl.rgb.size(); ++i) EXPECT_NEAR(xl.rgb[i], expected[i % 3], 1) << i;
    // A latent along channel 0 only: each family's own first row.
    auto first = torch::zeros({1, 4, 1, 1});
    first[0][0] = 1.0f;
    EXPECT_NE(latentPreview(first, ModelFamily::SD1).rgb, latentPreview(first, ModelFamily::SDXL).rgb);
}
