// Parity with the reference implementation (CompVis ldm, transformers, open_clip) on the tiny
// checkpoints in $EASEL_REFERENCE_DIR. Everything that the weights cannot say (head counts,
// activation) is read from the folder's config.json, never hard-coded.

#include <gtest/gtest.h>

#include "inference/loading/checkpoint_loader.h"
#include "inference/loading/checkpoint_writer.h"
#include "reference_models.h"
#include "temp_dir.h"

using namespace easel::inference;
using easel::testing::overridesFor;
using easel::testing::parityTolerance;
using easel::testing::ReferenceVectors;

namespace {

struct Fixture {
    std::filesystem::path checkpoint;
    ModelOverrides overrides;
};

Fixture sd1() {
    const auto cfg = easel::testing::referenceConfig();
    return {easel::testing::referenceFile(cfg["checkpoint"]["file"].get<std::string>()),
            overridesFor(cfg, cfg["text_encoder"])};
}
Fixture sd2() {
    const auto cfg = easel::testing::referenceConfig();
    const auto& s = cfg["sd2"];
    auto o = overridesFor(s, s["text_encoder"]);
    o.prediction = PredictionType::VPrediction;
    return {easel::testing::referenceFile(s["checkpoint"]["file"].get<std::string>()), o};
}
Fixture inpainting() {
    const auto cfg = easel::testing::referenceConfig();
    const auto& s = cfg["inpainting"];
    // The inpainting file reuses the SD 1.x text encoder.
    return {easel::testing::referenceFile(s["checkpoint"]["file"].get<std::string>()),
            overridesFor(s, cfg["text_encoder"])};
}

void checkUNet(StableDiffusionModel& model, const std::string& vectorsFile) {
    torch::NoGradGuard noGrad;
    ReferenceVectors v(vectorsFile);
    for (const std::string c : {"a", "b", "c"}) {
        if (!v.has(c + ".x")) continue;
        SCOPED_TRACE("case " + c);
        const auto t = v[c + ".timesteps"];
        const auto sinusoidal = timestepEmbedding(t, model.detected.unet.modelChannels);
        EXPECT_TENSOR_NEAR(sinusoidal, v[c + ".t_sinusoidal_f64"], parityTolerance(v[c + ".t_sinusoidal_f64"], 5e-5));
        EXPECT_TENSOR_NEAR(model.unet->time_embed->forward(sinusoidal), v[c + ".time_embed_f64"],
                           parityTolerance(v[c + ".time_embed_f64"], 5e-5));
        const auto eps = model.unet->forward(v[c + ".x"], t, v[c + ".context"]);
        EXPECT_TENSOR_NEAR(eps, v[c + ".eps_f64"], parityTolerance(v[c + ".eps_f64"]));
    }
}

}  // namespace

TEST(ModelDetection, Sd1SingleFile) {
    const auto f = sd1();
    const auto file = SafetensorsFile::open(f.checkpoint);
    const auto m = detectSingleFile(file, f.overrides);
    const auto cfg = easel::testing::referenceConfig();
    const auto& p = cfg["unet"]["params"];
    EXPECT_EQ(m.family, ModelFamily::SD1);
    EXPECT_FALSE(m.inpainting);
    EXPECT_EQ(m.unet.modelChannels, p["model_channels"].get<int>());
    EXPECT_EQ(m.unet.channelMult, p["channel_mult"].get<std::vector<int>>());
    EXPECT_EQ(m.unet.numResBlocks, p["num_res_blocks"].get<int>());
    EXPECT_EQ(m.unet.contextDim, p["context_dim"].get<int>());
    EXPECT_FALSE(m.unet.linearProjection);
    std::vector<int> levels;
    for (int r : p["attention_resolutions"].get<std::vector<int>>()) levels.push_back(static_cast<int>(std::log2(r)));
    std::sort(levels.begin(), levels.end());
    EXPECT_EQ(m.unet.attentionLevels, levels);
    // SD 1.x: one depth for every attention level and the middle block.
    for (int level : levels) EXPECT_EQ(m.unet.depthAt(level), p["transformer_depth"].get<int>()) << level;
    EXPECT_EQ(m.unet.middleTransformerDepth, p["transformer_depth"].get<int>());
    EXPECT_EQ(m.unet.admInChannels, 0);
    const auto& dd = cfg["vae"]["ddconfig"];
    EXPECT_EQ(m.vae.ch, dd["ch"].get<int>());
    EXPECT_EQ(m.vae.chMult, dd["ch_mult"].get<std::vector<int>>());
    EXPECT_EQ(m.vae.numResBlocks, dd["num_res_blocks"].get<int>());
    EXPECT_EQ(m.vae.zChannels, dd["z_channels"].get<int>());
    const auto& tc = cfg["text_encoder"]["config"];
    EXPECT_EQ(m.text.kind, TextEncoderKind::CLIP);
    EXPECT_EQ(m.text.vocabSize, tc["vocab_size"].get<int>());
    EXPECT_EQ(m.text.hiddenSize, tc["hidden_size"].get<int>());
    EXPECT_EQ(m.text.numLayers, tc["num_hidden_layers"].get<int>());
    EXPECT_EQ(m.text.intermediateSize, tc["intermediate_size"].get<int>());
}

TEST(ModelDetection, Sd2AndInpaintingSingleFiles) {
    const auto f2 = sd2();
    const auto m2 = detectSingleFile(SafetensorsFile::open(f2.checkpoint), f2.overrides);
    EXPECT_EQ(m2.family, ModelFamily::SD2);
    EXPECT_TRUE(m2.unet.linearProjection);
    EXPECT_EQ(m2.text.kind, TextEncoderKind::OpenCLIP);
    EXPECT_EQ(m2.text.defaultSkippedLayers, 1);
    const auto fi = inpainting();
    const auto mi = detectSingleFile(SafetensorsFile::open(fi.checkpoint), fi.overrides);
    EXPECT_TRUE(mi.inpainting);
    EXPECT_EQ(mi.unet.inChannels, 9);
}

TEST(ModelParity, Sd1TextEncoder) {
    auto model = loadSingleFileCheckpoint(sd1().checkpoint, sd1().overrides);
    ReferenceVectors v("text_encoder_vectors.safetensors");
    torch::NoGradGuard noGrad;
    auto& clip = dynamic_cast<CLIPTextModelImpl&>(*model.textEncoder);
    const auto ids = v["input_ids"];
    EXPECT_TENSOR_NEAR(clip.hiddenAfter(ids, 0), v["embeddings_f64"], parityTolerance(v["embeddings_f64"]));
    const auto last = clip.encode(ids, 1);
    EXPECT_TENSOR_NEAR(last.hidden, v["last_hidden_state_f64"], parityTolerance(v["last_hidden_state_f64"]));
    EXPECT_TENSOR_NEAR(last.pooled, v["pooler_output_f64"], parityTolerance(v["pooler_output_f64"]));
    const int layers = model.detected.text.numLayers;
    EXPECT_TENSOR_NEAR(clip.hiddenAfter(ids, layers - 1), v["penultimate_hidden_state_f64"],
                       parityTolerance(v["penultimate_hidden_state_f64"]));
    EXPECT_TENSOR_NEAR(clip.encode(ids, 2).hidden, v["penultimate_hidden_state_final_ln_f64"],
                       parityTolerance(v["penultimate_hidden_state_final_ln_f64"]));
}

TEST(ModelParity, Sd1UNet) {
    auto model = loadSingleFileCheckpoint(sd1().checkpoint, sd1().overrides);
    checkUNet(model, "unet_vectors.safetensors");
}

TEST(ModelParity, Sd1VAE) {
    auto model = loadSingleFileCheckpoint(sd1().checkpoint, sd1().overrides);
    ReferenceVectors v("vae_vectors.safetensors");
    torch::NoGradGuard noGrad;
    const auto enc = model.vae->encode(v["encode.image"]);
    EXPECT_TENSOR_NEAR(model.vae->encoder->forward(v["encode.image"]), v["encode.encoder_out_f64"],
                       parityTolerance(v["encode.encoder_out_f64"]));
    EXPECT_TENSOR_NEAR(enc.mean, v["encode.mean_f64"], parityTolerance(v["encode.mean_f64"]));
    EXPECT_TENSOR_NEAR(enc.logvar, v["encode.logvar_f64"], parityTolerance(v["encode.logvar_f64"]));
    EXPECT_TENSOR_NEAR(enc.std, v["encode.std_f64"], parityTolerance(v["encode.std_f64"]));
    for (int i = 0; v.has("decode" + std::to_string(i) + ".z"); ++i) {
        const std::string d = "decode" + std::to_string(i);
        SCOPED_TRACE(d);
        EXPECT_TENSOR_NEAR(model.vae->post_quant_conv->forward(v[d + ".z"]), v[d + ".post_quant_conv_f64"],
                           parityTolerance(v[d + ".post_quant_conv_f64"]));
        EXPECT_TENSOR_NEAR(model.vae->decode(v[d + ".z"]), v[d + ".image_f64"], parityTolerance(v[d + ".image_f64"]));
    }
}

TEST(ModelParity, Sd2OpenCLIPTextEncoder) {
    auto model = loadSingleFileCheckpoint(sd2().checkpoint, sd2().overrides);
    ReferenceVectors v("sd2_text_encoder_vectors.safetensors");
    torch::NoGradGuard noGrad;
    auto& clip = dynamic_cast<OpenCLIPTextModelImpl&>(*model.textEncoder);
    const auto ids = v["input_ids"];
    EXPECT_TENSOR_NEAR(clip.encode(ids, 1).hidden, v["penultimate_ln_final_f64"],
                       parityTolerance(v["penultimate_ln_final_f64"]));
    EXPECT_TENSOR_NEAR(clip.encodeLayers(ids, model.detected.text.numLayers), v["last_ln_final_f64"],
                       parityTolerance(v["last_ln_final_f64"]));
    EXPECT_TENSOR_NEAR(clip.textEmbeds(ids), v["text_embeds_f64"], parityTolerance(v["text_embeds_f64"]));
}

TEST(ModelParity, Sd2UNetAndVAE) {
    auto model = loadSingleFileCheckpoint(sd2().checkpoint, sd2().overrides);
    checkUNet(model, "sd2_unet_vectors.safetensors");
    ReferenceVectors v("sd2_vae_vectors.safetensors");
    torch::NoGradGuard noGrad;
    for (const auto& t : v.file().tensors()) {
        if (t.name.find(".image_f64") == std::string::npos || t.name.rfind("decode", 0) != 0) continue;
        const std::string d = t.name.substr(0, t.name.find('.'));
        EXPECT_TENSOR_NEAR(model.vae->decode(v[d + ".z"]), v[t.name], parityTolerance(v[t.name]));
    }
    if (v.has("encode.image")) {
        EXPECT_TENSOR_NEAR(model.vae->encode(v["encode.image"]).mean, v["encode.mean_f64"],
                           parityTolerance(v["encode.mean_f64"]));
    }
}

TEST(ModelParity, InpaintingUNet) {
    auto model = loadSingleFileCheckpoint(inpainting().checkpoint, inpainting().overrides);
    checkUNet(model, "inpaint_unet_vectors.safetensors");
}

TEST(ModelLoading, RefusesPickles) { EXPECT_THROW(loadSingleFileCheckpoint("/tmp/model.ckpt"), ModelLoadError); }

namespace {

// Rewrites the SD 1.x reference checkpoint with one change, for the malformed-checkpoint tests.
std::filesystem::path mutatedCheckpoint(
    const easel::testing::TempDir& dir, const std::string& name,
    const std::function<bool(std::string&, std::vector<std::int64_t>&, std::vector<std::byte>&)>& edit) {
    const auto src = SafetensorsFile::open(sd1().checkpoint);
    std::vector<std::string> names;
    std::vector<std::vector<std::int64_t>> shapes;
    std::vector<std::vector<std::byte>> data;
    std::vector<DType> dtypes;
    for (const auto& t : src.tensors()) {
        std::string n = t.name;
        auto shape = t.shape;
        std::vector<std::byte> bytes(t.data.begin(), t.data.end());
        if (!edit(n, shape, bytes)) continue;  // dropped
        names.push_back(n);
        shapes.push_back(shape);
        data.push_back(std::move(bytes));
        dtypes.push_back(t.dtype);
    }
    std::vector<TensorToWrite> out;
    for (std::size_t i = 0; i < names.size(); ++i) out.push_back({names[i], dtypes[i], shapes[i], data[i]});
    const auto path = dir / name;
    writeSafetensors(path, out);
    return path;
}

std::string loadError(const std::filesystem::path& path) {
    try {
        (void)loadSingleFileCheckpoint(path, sd1().overrides);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

const std::string kProbe = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight";

}  // namespace

TEST(ModelLoading, MissingTensorIsNamed) {
    easel::testing::TempDir dir;
    const auto p =
        mutatedCheckpoint(dir, "missing.safetensors", [](std::string& n, auto&, auto&) { return n != kProbe; });
    EXPECT_NE(loadError(p).find(kProbe), std::string::npos) << loadError(p);
}

TEST(ModelLoading, MisShapedTensorNamesKeyAndBothShapes) {
    easel::testing::TempDir dir;
    const std::string probe = "model.diffusion_model.input_blocks.1.0.out_layers.3.weight";
    const auto p =
        mutatedCheckpoint(dir, "shape.safetensors", [&](std::string& n, std::vector<std::int64_t>& shape, auto&) {
            if (n == probe) std::swap(shape[2], shape[0]);  // same byte count, wrong layout
            return true;
        });
    const auto error = loadError(p);
    EXPECT_NE(error.find(probe), std::string::npos) << error;
    EXPECT_NE(error.find("has shape [3, 32, 32, 3], the model expects [32, 32, 3, 3]"), std::string::npos) << error;
}

TEST(ModelLoading, ImpossibleGeometryIsAClearError) {
    // A tensor that detection reads: the wrong shape must not reach libtorch as a zero-channel layer.
    easel::testing::TempDir dir;
    const auto p =
        mutatedCheckpoint(dir, "geometry.safetensors", [](std::string& n, std::vector<std::int64_t>& shape, auto&) {
            if (n == kProbe) std::swap(shape[2], shape[0]);
            return true;
        });
    const auto error = loadError(p);
    EXPECT_NE(error.find("input_blocks.1.0.in_layers.2.weight"), std::string::npos) << error;
}

TEST(ModelLoading, NaNWeightsAreRefused) {
    easel::testing::TempDir dir;
    const auto p = mutatedCheckpoint(dir, "nan.safetensors", [](std::string& n, auto&, std::vector<std::byte>& bytes) {
        if (n == kProbe) {
            const float nan = std::numeric_limits<float>::quiet_NaN();
            std::memcpy(bytes.data(), &nan, sizeof nan);
        }
        return true;
    });
    const auto error = loadError(p);
    EXPECT_NE(error.find("NaN"), std::string::npos) << error;
    EXPECT_NE(error.find(kProbe), std::string::npos) << error;
}

TEST(ModelLoading, NotACheckpointSaysWhatIsMissing) {
    easel::testing::TempDir dir;
    const std::vector<float> v{1, 2};
    writeSafetensors(dir / "other.safetensors",
                     {{"foo.weight", DType::F32, {2}, std::as_bytes(std::span<const float>(v))}});
    const auto error = loadError(dir / "other.safetensors");
    EXPECT_NE(error.find("is missing"), std::string::npos) << error;
}

TEST(ModelLoading, Fp16AndBf16CheckpointsGiveTheSameModel) {
    // Weights stored in half precision load into a float32 model; outputs stay close to the f32 file's.
    easel::testing::TempDir dir;
    auto reference = loadSingleFileCheckpoint(sd1().checkpoint, sd1().overrides);
    ReferenceVectors v("unet_vectors.safetensors");
    torch::NoGradGuard noGrad;
    const auto want = reference.unet->forward(v["a.x"], v["a.timesteps"], v["a.context"]);
    for (const DType dtype : {DType::F16, DType::BF16}) {
        const auto path = dir / (std::string(dtypeName(dtype)) + ".safetensors");
        easel::inference::saveSingleFileCheckpoint(reference, path, dtype);
        auto model = loadSingleFileCheckpoint(path, sd1().overrides);
        const auto got = model.unet->forward(v["a.x"], v["a.timesteps"], v["a.context"]);
        EXPECT_LT(easel::testing::maxAbsDiff(got, want), dtype == DType::F16 ? 0.02 : 0.1) << dtypeName(dtype);
        EXPECT_GT(easel::testing::maxAbsDiff(got, want), 0.0);  // it really was rounded
    }
}

TEST(ModelParity, NonSquareLatentsThatAreNotMultiplesOfEight) {
    // 13x9 latents: each Upsample must match its skip's size (diffusers' upsample_size).
    auto model = loadSingleFileCheckpoint(sd1().checkpoint, sd1().overrides);
    torch::NoGradGuard noGrad;
    const auto x = torch::randn({1, 4, 13, 9});
    const auto out =
        model.unet->forward(x, torch::full({1}, 500.0f), torch::randn({1, 77, model.detected.unet.contextDim}));
    EXPECT_EQ(out.sizes(), x.sizes());
}
