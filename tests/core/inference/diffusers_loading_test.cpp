// Loading the reference diffusers folder ($EASEL_REFERENCE_DIR/diffusers): the same weights as the
// single-file checkpoint, the reference outputs, and clear errors for broken folders.

#include <gtest/gtest.h>

#include <functional>

#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "reference_vectors.h"
#include "temp_dir.h"

using namespace easel::inference;
using easel::testing::parityTolerance;
using easel::testing::ReferenceVectors;

namespace {

std::filesystem::path folderPath() { return easel::testing::referenceFile("diffusers"); }

StableDiffusionModel loadSingleFile() {
    const auto cfg = easel::testing::referenceConfig();
    ModelOverrides o;
    o.unetNumHeads = cfg["unet"]["params"]["num_heads"].get<int>();
    o.textNumHeads = cfg["text_encoder"]["config"]["num_attention_heads"].get<int>();
    return loadSingleFileCheckpoint(easel::testing::referenceFile(cfg["checkpoint"]["file"].get<std::string>()), o);
}

void expectSameTensors(torch::nn::Module& a, torch::nn::Module& b) {
    const auto pa = a.named_parameters(true), pb = b.named_parameters(true);
    ASSERT_EQ(pa.size(), pb.size());
    for (const auto& item : pa) {
        const auto* other = pb.find(item.key());
        ASSERT_NE(other, nullptr) << item.key();
        EXPECT_TRUE(torch::equal(item.value(), *other)) << item.key();
    }
    for (const auto& item : a.named_buffers(true)) {
        EXPECT_TRUE(torch::equal(item.value(), *b.named_buffers(true).find(item.key()))) << item.key();
    }
}

// A copy of the reference folder whose UNet file went through `edit` (return false to drop a tensor).
std::filesystem::path editedFolder(const easel::testing::TempDir& dir,
                                   const std::function<bool(const std::string&, std::vector<std::int64_t>&)>& edit) {
    const auto root = dir / "model";
    std::filesystem::copy(folderPath(), root, std::filesystem::copy_options::recursive);
    const auto unetPath = root / "unet" / "diffusion_pytorch_model.safetensors";
    std::vector<std::vector<std::int64_t>> shapes;
    std::vector<TensorToWrite> out;
    {
        const auto src = SafetensorsFile::open(folderPath() / "unet" / "diffusion_pytorch_model.safetensors");
        shapes.reserve(src.tensors().size());
        for (const auto& t : src.tensors()) {
            auto shape = t.shape;
            if (!edit(t.name, shape)) continue;
            shapes.push_back(shape);
            out.push_back({t.name, t.dtype, shapes.back(), t.data});
        }
        std::filesystem::remove(unetPath);
        writeSafetensors(unetPath, out);
    }
    return root;
}

std::string loadError(const std::filesystem::path& folder) {
    try {
        (void)loadDiffusersFolder(folder);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(DiffusersLoading, EveryWeightEqualsTheSingleFileCheckpoints) {
    auto folder = loadDiffusersFolder(folderPath());
    auto single = loadSingleFile();
    EXPECT_EQ(folder.detected.describe(), single.detected.describe());
    EXPECT_EQ(folder.detected.unet.numHeads, single.detected.unet.numHeads);
    EXPECT_EQ(folder.detected.text.numHeads, single.detected.text.numHeads);
    expectSameTensors(*folder.unet, *single.unet);
    expectSameTensors(*folder.vae, *single.vae);
    expectSameTensors(*folder.textModule, *single.textModule);
}

TEST(DiffusersParity, TextEncoderUNetAndVAE) {
    auto model = loadDiffusersFolder(folderPath());
    torch::NoGradGuard noGrad;
    ReferenceVectors t("text_encoder_vectors.safetensors");
    EXPECT_TENSOR_NEAR(model.textEncoder->encode(t["input_ids"], 1).hidden, t["last_hidden_state_f64"],
                       parityTolerance(t["last_hidden_state_f64"]));
    ReferenceVectors u("unet_vectors.safetensors");
    for (const std::string c : {"a", "b", "c"}) {
        if (!u.has(c + ".x")) continue;
        SCOPED_TRACE("case " + c);
        EXPECT_TENSOR_NEAR(model.unet->forward(u[c + ".x"], u[c + ".timesteps"], u[c + ".context"]), u[c + ".eps_f64"],
                           parityTolerance(u[c + ".eps_f64"]));
    }
    ReferenceVectors v("vae_vectors.safetensors");
    const auto enc = model.vae->encode(v["encode.image"]);
    EXPECT_TENSOR_NEAR(enc.mean, v["encode.mean_f64"], parityTolerance(v["encode.mean_f64"]));
    EXPECT_TENSOR_NEAR(enc.logvar, v["encode.logvar_f64"], parityTolerance(v["encode.logvar_f64"]));
    for (int i = 0; v.has("decode" + std::to_string(i) + ".z"); ++i) {
        const std::string d = "decode" + std::to_string(i);
        EXPECT_TENSOR_NEAR(model.vae->decode(v[d + ".z"]), v[d + ".image_f64"], parityTolerance(v[d + ".image_f64"]));
    }
}

TEST(DiffusersLoading, EngineLoadsTheFolder) {
    Engine engine;
    engine.loadModel(folderPath());
    EXPECT_EQ(engine.model().id, "diffusers");
    EXPECT_NE(engine.model().description.find("SD 1.x"), std::string::npos) << engine.model().description;
}

TEST(DiffusersLoading, MissingTensorNamesTheDiffusersKeyAndFile) {
    easel::testing::TempDir dir;
    const std::string probe = "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v.weight";
    const auto root = editedFolder(dir, [&](const std::string& name, auto&) { return name != probe; });
    const auto error = loadError(root);
    EXPECT_NE(error.find("'" + probe + "' (unet/diffusion_pytorch_model.safetensors)"), std::string::npos) << error;
    EXPECT_NE(error.find("missing"), std::string::npos) << error;
}

TEST(DiffusersLoading, MisShapedTensorNamesTheDiffusersKeyAndBothShapes) {
    easel::testing::TempDir dir;
    const std::string probe = "down_blocks.0.resnets.0.conv2.weight";
    const auto root = editedFolder(dir, [&](const std::string& name, std::vector<std::int64_t>& shape) {
        if (name == probe) std::swap(shape[0], shape[2]);  // same byte count, wrong layout
        return true;
    });
    const auto error = loadError(root);
    EXPECT_NE(error.find("'" + probe + "' (unet/diffusion_pytorch_model.safetensors)"), std::string::npos) << error;
    EXPECT_NE(error.find("has shape [3, 32, 32, 3], the model expects [32, 32, 3, 3]"), std::string::npos) << error;
}

TEST(DiffusersLoading, PickledWeightsAreRefused) {
    easel::testing::TempDir dir;
    const auto root = dir / "model";
    std::filesystem::copy(folderPath(), root, std::filesystem::copy_options::recursive);
    std::filesystem::remove(root / "text_encoder" / "model.safetensors");
    dir.write("model/text_encoder/pytorch_model.bin", "PK\x03\x04");
    const auto error = loadError(root);
    EXPECT_NE(error.find("pytorch_model.bin"), std::string::npos) << error;
    EXPECT_NE(error.find("pickled"), std::string::npos) << error;
    Engine engine;
    EXPECT_THROW(engine.loadModel(root), ModelLoadError);
    EXPECT_FALSE(engine.hasModel());
}
