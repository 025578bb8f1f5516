// The diffusers -> original key map and the folder reader, without libtorch: names, shapes and bytes.

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "inference/loading/diffusers_loader.h"
#include "reference_dir.h"
#include "temp_dir.h"

using namespace easel::inference;

namespace {

// SD 1.5: layers_per_block 2, up blocks [UpBlock2D, CrossAttnUpBlock2D x3], VAE with 4 levels.
DiffusersLayout sd15Layout() {
    DiffusersLayout l;
    l.unetLayersPerBlock = 2;
    l.unetUpBlockAttention = {false, true, true, true};
    l.vaeLevels = 4;
    return l;
}

std::string toOriginal(DiffusersComponent c, const std::string& key) {
    return diffusersToOriginalKey(c, key, sd15Layout()).value_or("<none>");
}

std::filesystem::path referenceFolder() { return easel::testing::referenceFile("diffusers"); }

// A set kept in a folder of the default one (e.g. "sdxl"): "<name>/" there, or "" when
// $EASEL_REFERENCE_DIR points at such a set itself (`marker`, a file only that set has, at its top).
std::string referenceSubset(const std::string& name, const std::string& marker) {
    const auto dir = easel::testing::referenceDir();
    if (std::filesystem::exists(dir / name / marker)) return name + "/";
    if (std::filesystem::exists(dir / marker)) return "";
    return name + "/";  // referenceFile then names what is missing
}

nlohmann::json readJson(const std::filesystem::path& p) { return nlohmann::json::parse(std::ifstream(p)); }

}  // namespace

TEST(DiffusersKeyMap, UNetKeysOfSd15) {
    using C = DiffusersComponent;
    const std::string u = "model.diffusion_model.";
    EXPECT_EQ(toOriginal(C::UNet, "conv_in.weight"), u + "input_blocks.0.0.weight");
    EXPECT_EQ(toOriginal(C::UNet, "time_embedding.linear_1.bias"), u + "time_embed.0.bias");
    EXPECT_EQ(toOriginal(C::UNet, "time_embedding.linear_2.weight"), u + "time_embed.2.weight");
    EXPECT_EQ(toOriginal(C::UNet, "conv_norm_out.weight"), u + "out.0.weight");
    EXPECT_EQ(toOriginal(C::UNet, "conv_out.bias"), u + "out.2.bias");
    EXPECT_EQ(toOriginal(C::UNet, "down_blocks.0.resnets.0.norm1.weight"), u + "input_blocks.1.0.in_layers.0.weight");
    EXPECT_EQ(toOriginal(C::UNet, "down_blocks.1.resnets.1.conv1.weight"), u + "input_blocks.5.0.in_layers.2.weight");
    EXPECT_EQ(toOriginal(C::UNet, "down_blocks.1.resnets.0.conv_shortcut.weight"),
              u + "input_blocks.4.0.skip_connection.weight");
    EXPECT_EQ(toOriginal(C::UNet, "down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight"),
              u + "input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight");
    EXPECT_EQ(toOriginal(C::UNet, "down_blocks.2.downsamplers.0.conv.weight"), u + "input_blocks.9.0.op.weight");
    EXPECT_EQ(toOriginal(C::UNet, "down_blocks.3.resnets.1.time_emb_proj.bias"),
              u + "input_blocks.11.0.emb_layers.1.bias");
    EXPECT_EQ(toOriginal(C::UNet, "mid_block.resnets.0.norm2.bias"), u + "middle_block.0.out_layers.0.bias");
    EXPECT_EQ(toOriginal(C::UNet, "mid_block.attentions.0.proj_in.weight"), u + "middle_block.1.proj_in.weight");
    EXPECT_EQ(toOriginal(C::UNet, "mid_block.resnets.1.conv2.weight"), u + "middle_block.2.out_layers.3.weight");
    EXPECT_EQ(toOriginal(C::UNet, "up_blocks.0.resnets.2.conv1.bias"), u + "output_blocks.2.0.in_layers.2.bias");
    EXPECT_EQ(toOriginal(C::UNet, "up_blocks.0.upsamplers.0.conv.weight"), u + "output_blocks.2.1.conv.weight");
    EXPECT_EQ(toOriginal(C::UNet, "up_blocks.1.upsamplers.0.conv.bias"), u + "output_blocks.5.2.conv.bias");
    EXPECT_EQ(toOriginal(C::UNet, "up_blocks.3.attentions.2.proj_out.weight"),
              u + "output_blocks.11.1.proj_out.weight");
    // Keys that an SD 1.x / 2.x UNet does not have.
    EXPECT_EQ(toOriginal(C::UNet, "add_embedding.linear_1.weight"), "<none>");
    EXPECT_EQ(toOriginal(C::UNet, "down_blocks.0.resnets.2.conv1.weight"), "<none>");
    EXPECT_EQ(toOriginal(C::UNet, "down_blocks.0.downsamplers.1.conv.weight"), "<none>");
    EXPECT_EQ(toOriginal(C::UNet, "mid_block.resnets.2.conv1.weight"), "<none>");
}

TEST(DiffusersKeyMap, VAEAndTextEncoderKeysOfSd15) {
    using C = DiffusersComponent;
    const std::string v = "first_stage_model.";
    EXPECT_EQ(toOriginal(C::VAE, "encoder.down_blocks.1.resnets.0.conv_shortcut.weight"),
              v + "encoder.down.1.block.0.nin_shortcut.weight");
    EXPECT_EQ(toOriginal(C::VAE, "encoder.down_blocks.0.downsamplers.0.conv.bias"),
              v + "encoder.down.0.downsample.conv.bias");
    EXPECT_EQ(toOriginal(C::VAE, "encoder.conv_norm_out.weight"), v + "encoder.norm_out.weight");
    EXPECT_EQ(toOriginal(C::VAE, "encoder.mid_block.resnets.1.norm1.bias"), v + "encoder.mid.block_2.norm1.bias");
    EXPECT_EQ(toOriginal(C::VAE, "encoder.mid_block.attentions.0.group_norm.weight"),
              v + "encoder.mid.attn_1.norm.weight");
    EXPECT_EQ(toOriginal(C::VAE, "decoder.mid_block.attentions.0.to_out.0.weight"),
              v + "decoder.mid.attn_1.proj_out.weight");
    EXPECT_EQ(toOriginal(C::VAE, "decoder.mid_block.attentions.0.query.weight"), v + "decoder.mid.attn_1.q.weight");
    EXPECT_EQ(toOriginal(C::VAE, "decoder.mid_block.attentions.0.proj_attn.bias"),
              v + "decoder.mid.attn_1.proj_out.bias");
    EXPECT_EQ(toOriginal(C::VAE, "decoder.up_blocks.0.upsamplers.0.conv.weight"),
              v + "decoder.up.3.upsample.conv.weight");
    EXPECT_EQ(toOriginal(C::VAE, "decoder.up_blocks.3.resnets.2.conv2.bias"), v + "decoder.up.0.block.2.conv2.bias");
    EXPECT_EQ(toOriginal(C::VAE, "post_quant_conv.weight"), v + "post_quant_conv.weight");
    EXPECT_EQ(toOriginal(C::VAE, "decoder.up_blocks.4.resnets.0.conv1.weight"), "<none>");
    EXPECT_EQ(toOriginal(C::TextEncoder, "text_model.final_layer_norm.weight"),
              "cond_stage_model.transformer.text_model.final_layer_norm.weight");
    EXPECT_EQ(toOriginal(C::TextEncoder, "text_projection.weight"), "<none>");
    EXPECT_TRUE(isOriginalVAEAttentionWeight("first_stage_model.decoder.mid.attn_1.q.weight"));
    EXPECT_FALSE(isOriginalVAEAttentionWeight("first_stage_model.decoder.mid.attn_1.q.bias"));
    EXPECT_FALSE(isOriginalVAEAttentionWeight("model.diffusion_model.middle_block.1.proj_out.weight"));
}

TEST(DiffusersKeyMap, InverseGivesTodaysNamesAndNothingForOtherKeys) {
    const auto l = sd15Layout();
    const auto up = originalToDiffusersKey("model.diffusion_model.output_blocks.5.2.conv.weight", l);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->component, DiffusersComponent::UNet);
    EXPECT_EQ(up->key, "up_blocks.1.upsamplers.0.conv.weight");
    const auto q = originalToDiffusersKey("first_stage_model.encoder.mid.attn_1.q.weight", l);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->key, "encoder.mid_block.attentions.0.to_q.weight");
    EXPECT_FALSE(originalToDiffusersKey("alphas_cumprod", l));
    EXPECT_FALSE(originalToDiffusersKey("model_ema.decay", l));
}

// Every tensor of the reference folder is a tensor of the single-file checkpoint, byte for byte,
// and the inverse map leads back to it.
TEST(DiffusersFolder, ReferenceFolderIsTheSingleFileCheckpoint) {
    const auto cfg = readJson(easel::testing::referenceFile("config.json"));
    const auto single =
        SafetensorsFile::open(easel::testing::referenceFile(cfg["checkpoint"]["file"].get<std::string>()));
    const auto folder = openDiffusersFolder(referenceFolder());
    std::set<std::string> seen;
    for (const auto& t : folder.weights.tensors()) {
        SCOPED_TRACE(t.name);
        const auto* ref = single.find(t.name);
        ASSERT_NE(ref, nullptr);
        EXPECT_EQ(t.shape, ref->shape);
        EXPECT_EQ(t.dtype, ref->dtype);
        ASSERT_EQ(t.data.size(), ref->data.size());
        EXPECT_EQ(std::memcmp(t.data.data(), ref->data.data(), t.data.size()), 0);
        EXPECT_TRUE(seen.insert(t.name).second);
        const auto back = originalToDiffusersKey(t.name, folder.layout);
        ASSERT_TRUE(back);
        const auto& file = back->component == DiffusersComponent::UNet  ? folder.unetFile
                           : back->component == DiffusersComponent::VAE ? folder.vaeFile
                                                                        : folder.textEncoderFile;
        EXPECT_NE(SafetensorsFile::open(file).find(back->key), nullptr) << back->key;
    }
    // ... and every network tensor of the checkpoint is in the folder.
    for (const auto& t : single.tensors()) {
        if (t.name.find('.') == std::string::npos || t.name.rfind("model_ema.", 0) == 0) continue;
        EXPECT_TRUE(seen.count(t.name)) << t.name;
    }
}

TEST(DiffusersFolder, ConfigsGiveLayoutHeadsAndScaling) {
    const auto root = referenceFolder();
    const auto folder = openDiffusersFolder(root);
    const auto unet = readJson(root / "unet" / "config.json");
    const auto text = readJson(root / "text_encoder" / "config.json");
    const auto vae = readJson(root / "vae" / "config.json");
    EXPECT_EQ(folder.layout.unetLayersPerBlock, unet["layers_per_block"].get<int>());
    EXPECT_EQ(folder.layout.unetUpBlockAttention.size(), unet["up_block_types"].size());
    EXPECT_EQ(folder.layout.vaeLevels, static_cast<int>(vae["block_out_channels"].size()));
    const auto ldm = readJson(easel::testing::referenceFile("config.json"));
    EXPECT_EQ(folder.overrides.unetNumHeads, ldm["unet"]["params"]["num_heads"].get<int>());
    EXPECT_EQ(folder.overrides.textNumHeads, text["num_attention_heads"].get<int>());
    EXPECT_EQ(folder.overrides.textQuickGELU, text["hidden_act"] == "quick_gelu");
    EXPECT_FLOAT_EQ(folder.overrides.vaeScalingFactor.value_or(0), vae["scaling_factor"].get<float>());
    EXPECT_EQ(folder.overrides.prediction, PredictionType::Epsilon);
    EXPECT_FALSE(folder.tokenizerVocab);  // the reference folder has none
    EXPECT_EQ(folder.describeKey("model.diffusion_model.input_blocks.1.0.in_layers.2.weight"),
              "'down_blocks.0.resnets.0.conv1.weight' (unet/diffusion_pytorch_model.safetensors)");
    EXPECT_EQ(folder.translateMessage("tensor 'first_stage_model.encoder.norm_out.bias' and 'x'"),
              "tensor 'encoder.conv_norm_out.bias' (vae/diffusion_pytorch_model.safetensors) and 'x'");
}

TEST(DiffusersFolder, PickledWeightsAreRefused) {
    easel::testing::TempDir dir;
    std::filesystem::create_directories(dir / "unet");
    dir.write("model_index.json", "{}");
    dir.write("unet/diffusion_pytorch_model.bin", "PK");
    try {
        (void)openDiffusersFolder(dir.path());
        FAIL() << "a .bin folder was accepted";
    } catch (const ModelLoadError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("diffusion_pytorch_model.bin"), std::string::npos) << what;
        EXPECT_NE(what.find("pickled"), std::string::npos) << what;
    }
}

TEST(SafetensorsCompose, RefusesDuplicatesAndWrongByteCounts) {
    const std::vector<float> values{1, 2, 3, 4};
    const auto bytes = std::as_bytes(std::span<const float>(values));
    EXPECT_THROW(SafetensorsFile::compose("x", {}, {{"a", DType::F32, {2, 2}, bytes}, {"a", DType::F32, {4}, bytes}}),
                 SafetensorsError);
    EXPECT_THROW(SafetensorsFile::compose("x", {}, {{"a", DType::F32, {3}, bytes}}), SafetensorsError);
    const auto ok = SafetensorsFile::compose("x", {}, {{"a", DType::F32, {2, 2, 1, 1}, bytes}},
                                             {{"b", DType::I64, {1}, std::vector<std::byte>(8)}});
    EXPECT_EQ(ok.at("a").shape, (std::vector<std::int64_t>{2, 2, 1, 1}));
    EXPECT_EQ(ok.at("b").data.size(), 8u);
}

TEST(DiffusersKeyMap, SDXLNames) {
    DiffusersLayout l = sd15Layout();
    l.sdxl = true;
    auto original = [&](DiffusersComponent c, const std::string& key) {
        return diffusersToOriginalKey(c, key, l).value_or("<none>");
    };
    // label_emb: add_embedding ("text_time") or class_embedding ("projection"), the same weights.
    EXPECT_EQ(original(DiffusersComponent::UNet, "add_embedding.linear_1.weight"),
              "model.diffusion_model.label_emb.0.0.weight");
    EXPECT_EQ(original(DiffusersComponent::UNet, "class_embedding.linear_2.bias"),
              "model.diffusion_model.label_emb.0.2.bias");
    EXPECT_EQ(originalToDiffusersKey("model.diffusion_model.label_emb.0.2.weight", l)->key,
              "add_embedding.linear_2.weight");
    EXPECT_EQ(original(DiffusersComponent::TextEncoder, "text_model.final_layer_norm.weight"),
              "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight");
    EXPECT_EQ(original(DiffusersComponent::TextEncoder2, "text_model.encoder.layers.3.mlp.fc1.bias"),
              "conditioner.embedders.1.model.transformer.resblocks.3.mlp.c_fc.bias");
    EXPECT_EQ(original(DiffusersComponent::TextEncoder2, "text_model.encoder.layers.0.self_attn.out_proj.weight"),
              "conditioner.embedders.1.model.transformer.resblocks.0.attn.out_proj.weight");
    EXPECT_EQ(original(DiffusersComponent::TextEncoder2, "text_model.embeddings.position_embedding.weight"),
              "conditioner.embedders.1.model.positional_embedding");
    EXPECT_EQ(original(DiffusersComponent::TextEncoder2, "text_model.final_layer_norm.bias"),
              "conditioner.embedders.1.model.ln_final.bias");
    // q/k/v are fused by the loader, not renamed.
    EXPECT_EQ(original(DiffusersComponent::TextEncoder2, "text_model.encoder.layers.0.self_attn.q_proj.weight"),
              "<none>");
    const auto back = originalToDiffusersKey("conditioner.embedders.1.model.transformer.resblocks.2.ln_2.weight", l);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->component, DiffusersComponent::TextEncoder2);
    EXPECT_EQ(back->key, "text_model.encoder.layers.2.layer_norm2.weight");
}

// SDXL: every tensor of the folder, the fused in_proj and the transposed text_projection included, is
// the single-file checkpoint's, byte for byte.
TEST(DiffusersFolder, SDXLFolderIsTheSingleFileCheckpoint) {
    const auto set = referenceSubset("sdxl", "conditioner_vectors.safetensors");
    const auto cfg = readJson(easel::testing::referenceFile(set + "config.json"));
    const auto single =
        SafetensorsFile::open(easel::testing::referenceFile(set + cfg["checkpoint"]["file"].get<std::string>()));
    const auto folder =
        openDiffusersFolder(easel::testing::referenceFile(set + cfg["diffusers"]["folder"].get<std::string>()));
    EXPECT_TRUE(folder.layout.sdxl);
    const auto text2 = readJson(folder.textEncoder2File.parent_path() / "config.json");
    EXPECT_EQ(folder.overrides.text2NumHeads, text2["num_attention_heads"].get<int>());
    std::set<std::string> seen;
    for (const auto& t : folder.weights.tensors()) {
        SCOPED_TRACE(t.name);
        EXPECT_TRUE(seen.insert(t.name).second);
        if (t.name.ends_with("logit_scale")) continue;  // open_clip's unused scalar, not in diffusers
        const auto* ref = single.find(t.name);
        ASSERT_NE(ref, nullptr);
        EXPECT_EQ(t.shape, ref->shape);
        EXPECT_EQ(t.dtype, ref->dtype);
        ASSERT_EQ(t.data.size(), ref->data.size());
        EXPECT_EQ(std::memcmp(t.data.data(), ref->data.data(), t.data.size()), 0);
        EXPECT_TRUE(originalToDiffusersKey(t.name, folder.layout)) << "no way back";
    }
    for (const auto& t : single.tensors()) {
        if (t.name.rfind("denoiser.", 0) == 0) continue;  // sgm's schedule buffer, not a weight
        EXPECT_TRUE(seen.count(t.name)) << t.name;
    }
    EXPECT_EQ(folder.describeKey("conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"),
              "'text_model.encoder.layers.0.self_attn.q_proj.weight' (text_encoder_2/model.safetensors)");
}
