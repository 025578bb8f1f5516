// LoRA / LoCon / LoHa merging against tests/data/reference/adapters (see its README.md): the
// expected merged checkpoints for every strength adapter_reference.json lists, the name table of
// lora_key_mapping.json, merge-and-restore on a loaded model, and the errors for files that do not
// fit. Strengths, file names, ranks and alphas are read from the JSON, never assumed.

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>

#include "inference/adapters/adapter.h"
#include "inference/adapters/adapter_key_map.h"
#include "inference/adapters/adapter_stack.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/tensor_utils.h"
#include "reference_models.h"
#include "temp_dir.h"
#include "tensor_files.h"

using namespace easel::inference;
using easel::testing::referenceFile;
using easel::testing::referenceJson;

namespace {

const nlohmann::json& reference() {
    static const auto json = referenceJson("adapters/adapter_reference.json");
    return json;
}

std::filesystem::path adapterFile(const std::string& name) { return referenceFile("adapters/" + name); }

std::shared_ptr<const Adapter> openAdapter(const std::filesystem::path& path) {
    return std::make_shared<const Adapter>(Adapter::open(path));
}

// The files of an adapter kind as adapter_reference.json names them ("lora": kohya and PEFT).
std::vector<std::string> filesOf(const std::string& kind) {
    const auto& section = reference().at(kind);
    if (section.contains("file")) return {section["file"].get<std::string>()};
    return {section.at("file_kohya").get<std::string>(), section.at("file_peft").get<std::string>()};
}

std::filesystem::path baseCheckpoint() {
    return referenceFile(easel::testing::referenceConfig()["checkpoint"]["file"].get<std::string>());
}

ModelOverrides sd1Overrides() {
    const auto cfg = easel::testing::referenceConfig();
    return easel::testing::overridesFor(cfg, cfg["text_encoder"]);
}

// Every tensor of a file, copied into memory.
std::map<std::string, torch::Tensor> readAll(const SafetensorsFile& file) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& t : file.tensors()) out.emplace(t.name, toTensor(t));
    return out;
}

bool sameBytes(const torch::Tensor& t, const TensorView& view) {
    const auto c = t.contiguous();
    return c.nbytes() == view.data.size() && std::memcmp(c.data_ptr(), view.data.data(), view.data.size()) == 0;
}

// The keys an adapter changes in the base checkpoint.
std::set<std::string> targetKeys(const Adapter& adapter, const AdapterKeyMap& map) {
    std::set<std::string> keys;
    for (const auto& r : resolveAdapter(adapter, map)) keys.insert(r.target.key);
    return keys;
}

struct Expected {
    std::string mergedFile;
    std::string kind;  // "lora" / "loha"
    double strength;
    std::size_t modified;
};

std::vector<Expected> expectedMerges() {
    std::vector<Expected> out;
    for (const auto& [file, e] : reference().at("merge").at("files").items()) {
        out.push_back({file, e.at("adapter").get<std::string>(), e.at("strength").get<double>(),
                       e.at("modified_tensors").get<std::size_t>()});
    }
    return out;
}

// Compares every tensor of `weights` with the merged file: adapted ones within `tolerance` (and
// counts how many are bit-exact), all others byte-identical.
void expectMerged(const std::map<std::string, torch::Tensor>& weights, const SafetensorsFile& merged,
                  const std::set<std::string>& adapted, double tolerance) {
    std::size_t exact = 0;
    double worst = 0;
    ASSERT_EQ(weights.size(), merged.tensors().size());
    for (const auto& view : merged.tensors()) {
        const auto& t = weights.at(view.name);
        if (adapted.contains(view.name)) {
            const double d = easel::testing::maxAbsDiff(t, toTensor(view));
            worst = std::max(worst, d);
            EXPECT_LE(d, tolerance) << view.name;
            exact += sameBytes(t, view) ? 1 : 0;
        } else {
            EXPECT_TRUE(sameBytes(t, view)) << view.name << " changed but the adapter does not touch it";
        }
    }
    std::cout << "  " << merged.path().filename().string() << ": " << adapted.size() << " adapted tensors, " << exact
              << " bit-exact, max diff " << worst << "\n";
}

// The loaded model's UNet and text-encoder parameters under their original keys.
std::map<std::string, torch::Tensor> liveParameters(StableDiffusionModel& model) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : model.unet->named_parameters(true))
        out.emplace(model.detected.unetPrefix + p.key(), p.value());
    for (const auto& p : model.textModule->named_parameters(true))
        out.emplace(model.detected.textPrefix + p.key(), p.value());
    return out;
}

// Writes tensors as a safetensors adapter file.
std::filesystem::path writeAdapter(const std::filesystem::path& path,
                                   const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                   const std::map<std::string, std::string>& metadata = {}) {
    return easel::testing::writeTensorFile(path, tensors, metadata);
}

std::string errorOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const AdapterError& e) {
        std::cout << "  AdapterError: " << e.what() << "\n";  // what the user would read
        return e.what();
    }
    return "(no AdapterError)";
}

}  // namespace

TEST(AdapterFormat, ReadsKohyaPeftAndLoHaWithTheirRanksAndAlphas) {
    const auto& lora = reference().at("lora");
    const auto& loha = reference().at("loha");
    for (const auto& name : filesOf("lora")) {
        SCOPED_TRACE(name);
        const auto a = Adapter::open(adapterFile(name));
        EXPECT_EQ(a.modules().size(), lora.at("num_modules").get<std::size_t>());
        std::size_t unet = 0;
        for (const auto& m : a.modules()) {
            EXPECT_EQ(m.algorithm, AdapterAlgorithm::LoRA);
            EXPECT_EQ(m.rank, lora.at("rank").get<std::int64_t>());
            EXPECT_DOUBLE_EQ(m.alpha, lora.at("alpha").get<double>());
            EXPECT_DOUBLE_EQ(m.scale, lora.at("scale_alpha_over_rank").get<double>());
            unet += m.component == AdapterComponent::UNet ? 1 : 0;
        }
        EXPECT_EQ(unet, lora.at("num_modules_unet").get<std::size_t>());
    }
    EXPECT_EQ(Adapter::open(adapterFile(lora.at("file_kohya").get<std::string>())).formatName(), "kohya LoRA/LoCon");
    EXPECT_EQ(Adapter::open(adapterFile(lora.at("file_peft").get<std::string>())).formatName(), "diffusers PEFT LoRA");
    EXPECT_EQ(Adapter::open(adapterFile(lora.at("file_kohya").get<std::string>())).base(), AdapterBase::SD1);

    const auto a = Adapter::open(adapterFile(loha.at("file").get<std::string>()));
    EXPECT_EQ(a.formatName(), "LyCORIS LoHa");
    std::vector<std::string> names;
    for (const auto& m : a.modules()) {
        names.push_back(m.name);
        EXPECT_EQ(m.algorithm, AdapterAlgorithm::LoHa);
        EXPECT_EQ(m.rank, loha.at("rank").get<std::int64_t>());
        EXPECT_DOUBLE_EQ(m.scale, loha.at("scale_alpha_over_rank").get<double>());
    }
    EXPECT_EQ(names, loha.at("modules").get<std::vector<std::string>>());
}

TEST(AdapterKeyMapping, AgreesWithTheReferenceTable) {
    const auto base = SafetensorsFile::open(baseCheckpoint());
    const auto map = AdapterKeyMap::fromCheckpoint(detectSingleFile(base), base);
    const auto table = referenceJson("adapters/lora_key_mapping.json").at("modules");
    const auto kohya = Adapter::open(adapterFile(reference()["lora"]["file_kohya"].get<std::string>()));
    const auto peft = Adapter::open(adapterFile(reference()["lora"]["file_peft"].get<std::string>()));
    const auto loha = Adapter::open(adapterFile(reference()["loha"]["file"].get<std::string>()));
    auto targetOf = [&](const Adapter& a, const std::string& name) -> std::string {
        for (const auto& m : a.modules()) {
            if (m.name == name) {
                const auto t = map.find(m);
                return t ? t->key : "(no target)";
            }
        }
        return "(no module)";
    };
    std::size_t checked = 0;
    for (const auto& [name, e] : table.items()) {
        const auto original = e.at("original_weight_key").get<std::string>();
        EXPECT_EQ(targetOf(kohya, name), original) << name;
        const auto peftA = e.at("peft_lora_A_key").get<std::string>();
        const auto peftModule = peftA.substr(0, peftA.size() - std::string(".lora_A.weight").size());
        EXPECT_EQ(targetOf(peft, peftModule), original) << peftModule;
        EXPECT_EQ(peftModule.substr(peftModule.find('.') + 1), e.at("diffusers_module").get<std::string>());
        if (e.at("in_loha_file").get<bool>()) {
            EXPECT_EQ(targetOf(loha, name), original) << name;
        }
        ++checked;
    }
    EXPECT_EQ(checked, kohya.modules().size());
    EXPECT_EQ(resolveAdapter(kohya, map).size(), table.size());
}

TEST(AdapterParity, MergedCheckpointsMatchForEveryTensorAtEveryStrength) {
    const auto base = SafetensorsFile::open(baseCheckpoint());
    const auto detected = detectSingleFile(base);
    for (const auto& e : expectedMerges()) {
        const auto merged = SafetensorsFile::open(adapterFile(e.mergedFile));
        for (const auto& file : filesOf(e.kind)) {
            SCOPED_TRACE(file + " at " + std::to_string(e.strength));
            auto weights = readAll(base);
            AdapterStack stack(detected, weights);  // the same tensors: merged in place
            const auto adapter = openAdapter(adapterFile(file));
            const auto adapted = targetKeys(*adapter, stack.keyMap());
            EXPECT_EQ(adapted.size(), e.modified);
            EXPECT_TRUE(stack.apply({{adapter, e.strength, e.strength}}));
            expectMerged(weights, merged, adapted, 1e-7);
            stack.restore();
            for (const auto& view : base.tensors()) EXPECT_TRUE(sameBytes(weights.at(view.name), view)) << view.name;
        }
    }
}

TEST(AdapterStack, ApplyAndRestoreOnALoadedModelGiveTheBaseBitForBit) {
    auto model = loadSingleFileCheckpoint(baseCheckpoint(), sd1Overrides());
    const auto base = SafetensorsFile::open(baseCheckpoint());
    torch::NoGradGuard noGrad;
    torch::manual_seed(0);
    const auto& u = model.detected.unet;
    const auto x = torch::randn({1, u.inChannels, 8, 8});
    const auto t = torch::full({1}, 500.0f);
    const auto context = torch::randn({1, model.detected.text.maxPositions, u.contextDim});
    const auto ids = torch::randint(0, model.detected.text.vocabSize, {1, model.detected.text.maxPositions});
    const auto eps0 = model.unet->forward(x, t, context);
    const auto hidden0 = model.textEncoder->encode(ids, 1).hidden;

    AdapterStack stack(model);
    const auto lora = openAdapter(adapterFile(reference()["lora"]["file_kohya"].get<std::string>()));
    for (const auto& e : expectedMerges()) {
        if (e.kind != "lora") continue;
        SCOPED_TRACE(e.mergedFile);
        EXPECT_TRUE(stack.apply({{lora, e.strength, e.strength}}));
        EXPECT_FALSE(stack.apply({{lora, e.strength, e.strength}}));  // same set: nothing to do
        EXPECT_GT(stack.backupBytes(), 0u);
        // The live parameters are the merged checkpoint's tensors.
        const auto merged = SafetensorsFile::open(adapterFile(e.mergedFile));
        for (const auto& [key, value] : liveParameters(model))
            EXPECT_LE(easel::testing::maxAbsDiff(value, toTensor(merged.at(key))), 1e-7) << key;
        EXPECT_FALSE(torch::equal(model.unet->forward(x, t, context), eps0));
        EXPECT_FALSE(torch::equal(model.textEncoder->encode(ids, 1).hidden, hidden0));
        // A request without the LoRA: the base model's exact weights and outputs.
        EXPECT_TRUE(stack.apply({}));
        EXPECT_EQ(stack.backupBytes(), 0u);
        for (const auto& [key, value] : liveParameters(model)) EXPECT_TRUE(sameBytes(value, base.at(key))) << key;
        EXPECT_TRUE(torch::equal(model.unet->forward(x, t, context), eps0));
        EXPECT_TRUE(torch::equal(model.textEncoder->encode(ids, 1).hidden, hidden0));
    }
}

TEST(AdapterStack, StacksAdaptersWithSeparateTextAndUNetStrengths) {
    const auto base = SafetensorsFile::open(baseCheckpoint());
    const auto detected = detectSingleFile(base);
    auto weights = readAll(base);
    AdapterStack stack(detected, weights);
    const auto lora = openAdapter(adapterFile(reference()["lora"]["file_kohya"].get<std::string>()));
    const auto loha = openAdapter(adapterFile(reference()["loha"]["file"].get<std::string>()));
    const auto strengths = reference()["merge"]["strengths"].get<std::vector<double>>();
    ASSERT_FALSE(strengths.empty());
    const double s = strengths.front();
    auto mergedFor = [&](const std::string& kind) {
        for (const auto& e : expectedMerges()) {
            if (e.kind == kind && e.strength == s) return SafetensorsFile::open(adapterFile(e.mergedFile));
        }
        throw std::runtime_error("no merged file for " + kind);
    };
    const auto mergedLora = mergedFor("lora");
    const auto mergedLoha = mergedFor("loha");

    // UNet only: the text encoder keeps its base weights.
    ASSERT_TRUE(stack.apply({{lora, s, 0.0}}));
    for (const auto& r : resolveAdapter(*lora, stack.keyMap())) {
        const auto& key = r.target.key;
        if (r.target.component == AdapterComponent::TextEncoder) {
            EXPECT_TRUE(sameBytes(weights.at(key), base.at(key))) << key;
        } else {
            EXPECT_LE(easel::testing::maxAbsDiff(weights.at(key), toTensor(mergedLora.at(key))), 1e-7) << key;
        }
    }
    // Both adapters: each weight is base + both changes.
    ASSERT_TRUE(stack.apply({{lora, s, s}, {loha, s, s}}));
    const auto loraKeys = targetKeys(*lora, stack.keyMap());
    const auto lohaKeys = targetKeys(*loha, stack.keyMap());
    for (const auto& view : base.tensors()) {
        const auto baseValue = toTensor(view).to(torch::kFloat64);
        auto expected = baseValue.clone();
        if (loraKeys.contains(view.name))
            expected += toTensor(mergedLora.at(view.name)).to(torch::kFloat64) - baseValue;
        if (lohaKeys.contains(view.name))
            expected += toTensor(mergedLoha.at(view.name)).to(torch::kFloat64) - baseValue;
        if (!loraKeys.contains(view.name) && !lohaKeys.contains(view.name)) {
            EXPECT_TRUE(sameBytes(weights.at(view.name), view)) << view.name;
        } else {
            EXPECT_LE(easel::testing::maxAbsDiff(weights.at(view.name), expected), 3e-7) << view.name;
        }
    }
    stack.restore();
    for (const auto& view : base.tensors()) EXPECT_TRUE(sameBytes(weights.at(view.name), view)) << view.name;
}

TEST(AdapterFormat, PeftFileWithoutMetadataUsesScaleOne) {
    easel::testing::TempDir dir;
    const auto& lora = reference().at("lora");
    const auto peft = SafetensorsFile::open(adapterFile(lora.at("file_peft").get<std::string>()));
    ASSERT_TRUE(peft.metadata().contains("lora_adapter_metadata"));
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& view : peft.tensors()) tensors.emplace_back(view.name, toTensor(view));
    const auto bare = openAdapter(writeAdapter(dir / "bare_peft.safetensors", tensors));
    for (const auto& m : bare->modules()) EXPECT_DOUBLE_EQ(m.scale, 1.0) << m.name;

    // Strength s at scale 1 is strength s·(alpha/rank) at the file's real scale.
    const auto base = SafetensorsFile::open(baseCheckpoint());
    const auto detected = detectSingleFile(base);
    const double scale = lora.at("scale_alpha_over_rank").get<double>();
    for (const auto& e : expectedMerges()) {
        if (e.kind != "lora") continue;
        auto weights = readAll(base);
        AdapterStack stack(detected, weights);
        const auto merged = SafetensorsFile::open(adapterFile(e.mergedFile));
        ASSERT_TRUE(stack.apply({{bare, e.strength * scale, e.strength * scale}}));
        expectMerged(weights, merged, targetKeys(*bare, stack.keyMap()), 1e-7);
        if (scale != 1.0) {
            ASSERT_TRUE(stack.apply({{bare, e.strength, e.strength}}));
            const auto key = resolveAdapter(*bare, stack.keyMap()).front().target.key;
            EXPECT_GT(easel::testing::maxAbsDiff(weights.at(key), toTensor(merged.at(key))), 1e-6);
        }
    }
}

namespace {

// The reference kohya file's tensors, to build variants of it.
std::vector<std::pair<std::string, torch::Tensor>> kohyaTensors() {
    const auto file = SafetensorsFile::open(adapterFile(reference()["lora"]["file_kohya"].get<std::string>()));
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& view : file.tensors()) out.emplace_back(view.name, toTensor(view));
    return out;
}

std::vector<std::int64_t> shapeIn(const SafetensorsFile& file, const std::string& key) { return file.at(key).shape; }

}  // namespace

TEST(AdapterErrors, NamesModulesThatMatchNothingAndChangesNothing) {
    easel::testing::TempDir dir;
    auto tensors = kohyaTensors();
    const std::string stray = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn3_to_q";
    const auto extra = tensors;
    for (const auto& [name, t] : extra) {
        constexpr std::string_view from = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.";
        if (name.starts_with(from)) tensors.emplace_back(stray + "." + name.substr(from.size()), t);
    }
    const auto adapter = openAdapter(writeAdapter(dir / "stray.safetensors", tensors));
    const auto base = SafetensorsFile::open(baseCheckpoint());
    auto weights = readAll(base);
    AdapterStack stack(detectSingleFile(base), weights);
    const auto good = openAdapter(adapterFile(reference()["lora"]["file_kohya"].get<std::string>()));
    ASSERT_TRUE(stack.apply({{good, 1.0, 1.0}}));
    const auto message = errorOf([&] { stack.apply({{adapter, 1.0, 1.0}}); });
    EXPECT_NE(message.find(stray), std::string::npos) << message;
    EXPECT_NE(message.find("match no weight"), std::string::npos) << message;
    // The failed request left the previous set in place.
    ASSERT_EQ(stack.active().size(), 1u);
    EXPECT_EQ(stack.active().front().adapter, good);
    stack.restore();
    for (const auto& view : base.tensors()) EXPECT_TRUE(sameBytes(weights.at(view.name), view)) << view.name;
}

TEST(AdapterErrors, RefusesAnotherArchitectureWithAClearMessage) {
    easel::testing::TempDir dir;
    const auto base = SafetensorsFile::open(baseCheckpoint());
    const auto map = AdapterKeyMap::fromCheckpoint(detectSingleFile(base), base);
    const auto r = 4;
    auto lora = [&](const std::string& name, std::int64_t out, std::int64_t in) {
        return std::vector<std::pair<std::string, torch::Tensor>>{{name + ".lora_down.weight", torch::randn({r, in})},
                                                                  {name + ".lora_up.weight", torch::randn({out, r})},
                                                                  {name + ".alpha", torch::tensor(1.0f)}};
    };
    // SDXL (kohya names for its two text encoders and its LDM-named UNet blocks).
    auto sdxl = lora("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768);
    for (auto& t : lora("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 640, 2048)) sdxl.push_back(t);
    for (const auto& metadata : {std::map<std::string, std::string>{},
                                 std::map<std::string, std::string>{{"ss_base_model_version", "sdxl_base_v1-0"}}}) {
        const auto adapter = Adapter::open(writeAdapter(dir / "sdxl.safetensors", sdxl, metadata));
        EXPECT_EQ(adapter.base(), AdapterBase::SDXL);
        const auto message = errorOf([&] { resolveAdapter(adapter, map); });
        EXPECT_NE(message.find("SDXL"), std::string::npos) << message;
        EXPECT_NE(message.find("SD 1.x"), std::string::npos) << message;
        // SDXL's first text encoder has SD 1.x's names and (full-size) shapes; it still never matches.
        EXPECT_NE(message.find("lora_te1_text_model_encoder_layers_0_self_attn_q_proj"), std::string::npos) << message;
    }
    // An SD 2.x LoRA: the names exist, the widths do not.
    const auto q = shapeIn(base, "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight");
    const auto wide = lora("lora_te_text_model_encoder_layers_0_self_attn_q_proj", q[0] * 2, q[1] * 2);
    const auto adapter = Adapter::open(writeAdapter(dir / "sd2.safetensors", wide, {{"ss_v2", "True"}}));
    const auto message = errorOf([&] { resolveAdapter(adapter, map); });
    EXPECT_NE(message.find("does not fit"), std::string::npos) << message;
    EXPECT_NE(message.find("SD 2.x"), std::string::npos) << message;
    EXPECT_NE(message.find("self_attn.q_proj.weight"), std::string::npos) << message;
}

TEST(AdapterErrors, RefusesPicklesEmbeddingsAndUnsupportedLayouts) {
    easel::testing::TempDir dir;
    EXPECT_NE(errorOf([&] { Adapter::open(dir.write("old.pt", "not read")); }).find("pickled"), std::string::npos);
    EXPECT_NE(errorOf([&] { Adapter::open(dir.write("old.ckpt", "not read")); }).find("pickled"), std::string::npos);
    EXPECT_NE(errorOf([&] { Adapter::open(dir.write("junk.safetensors", "junk")); }).find("safetensors"),
              std::string::npos);
    const auto ti = reference().at("textual_inversion").at("embedding_file").get<std::string>();
    EXPECT_NE(errorOf([&] { Adapter::open(adapterFile(ti)); }).find("textual-inversion"), std::string::npos);
    EXPECT_NE(errorOf([&] { Adapter::open(baseCheckpoint()); }).find("checkpoint"), std::string::npos);
    auto dora = kohyaTensors();
    dora.emplace_back(dora.front().first.substr(0, dora.front().first.find('.')) + ".dora_scale", torch::ones({1, 4}));
    EXPECT_NE(errorOf([&] { Adapter::open(writeAdapter(dir / "dora.safetensors", dora)); }).find("DoRA"),
              std::string::npos);
    auto odd = kohyaTensors();
    odd.emplace_back("something_else.bias", torch::ones({4}));
    EXPECT_NE(errorOf([&] { Adapter::open(writeAdapter(dir / "odd.safetensors", odd)); }).find("something_else.bias"),
              std::string::npos);
}

TEST(AdapterStack, OpenCLIPQueryKeyValueChangesLandInTheirRowsOfTheFusedWeight) {
    easel::testing::TempDir dir;
    const auto cfg = easel::testing::referenceConfig();
    const auto path = referenceFile(cfg["sd2"]["checkpoint"]["file"].get<std::string>());
    const auto base = SafetensorsFile::open(path);
    const auto detected = detectSingleFile(base);
    ASSERT_EQ(detected.family, ModelFamily::SD2);
    const std::string fused = detected.textPrefix + "transformer.resblocks.0.attn.in_proj_weight";
    const auto fusedShape = shapeIn(base, fused);
    const auto d = fusedShape[0] / 3;
    const auto projIn = shapeIn(base, detected.unetPrefix + "input_blocks.1.1.proj_in.weight");
    ASSERT_EQ(projIn.size(), 2u);  // SD 2.x: Linear

    torch::manual_seed(3);
    const std::int64_t rank = 2;
    const float alpha = 1.5f;
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    auto add = [&](const std::string& name, torch::Tensor down, torch::Tensor up) {
        tensors.emplace_back(name + ".lora_down.weight", down);
        tensors.emplace_back(name + ".lora_up.weight", up);
        tensors.emplace_back(name + ".alpha", torch::tensor(alpha));
    };
    add("lora_te_text_model_encoder_layers_0_self_attn_q_proj", torch::randn({rank, fusedShape[1]}),
        torch::randn({d, rank}));
    add("lora_te_text_model_encoder_layers_0_self_attn_v_proj", torch::randn({rank, fusedShape[1]}),
        torch::randn({d, rank}));
    // SD 1.x-style 1x1 convolution tensors onto SD 2.x's Linear proj_in (A1111 reshapes them too).
    add("lora_unet_down_blocks_0_attentions_0_proj_in", torch::randn({rank, projIn[1], 1, 1}),
        torch::randn({projIn[0], rank, 1, 1}));
    const auto adapter = openAdapter(writeAdapter(dir / "sd2_lora.safetensors", tensors));

    const double strength = 0.8;
    auto expected = [&](const std::string& key, std::int64_t row, const std::string& module) {
        auto w = toTensor(base.at(key)).to(torch::kFloat64);
        torch::Tensor down, up;
        for (const auto& [name, t] : tensors) {
            if (name == module + ".lora_down.weight") down = t.to(torch::kFloat64).reshape({rank, -1});
            if (name == module + ".lora_up.weight") up = t.to(torch::kFloat64).reshape({-1, rank});
        }
        const auto delta = torch::matmul(up, down).reshape(w.narrow(0, row, up.size(0)).sizes());
        w.narrow(0, row, up.size(0)).add_(delta * (strength * (alpha / rank)));
        return w.to(torch::kFloat32);
    };
    auto weights = readAll(base);
    AdapterStack stack(detected, weights);
    ASSERT_TRUE(stack.apply({{adapter, strength, strength}}));
    auto fusedExpected = expected(fused, 0, "lora_te_text_model_encoder_layers_0_self_attn_q_proj");
    fusedExpected.narrow(0, 2 * d, d)
        .copy_(expected(fused, 2 * d, "lora_te_text_model_encoder_layers_0_self_attn_v_proj").narrow(0, 2 * d, d));
    EXPECT_LE(easel::testing::maxAbsDiff(weights.at(fused), fusedExpected), 1e-7);
    // The key rows are untouched.
    EXPECT_TRUE(torch::equal(weights.at(fused).narrow(0, d, d), toTensor(base.at(fused)).narrow(0, d, d)));
    const auto projKey = detected.unetPrefix + "input_blocks.1.1.proj_in.weight";
    EXPECT_LE(easel::testing::maxAbsDiff(weights.at(projKey),
                                         expected(projKey, 0, "lora_unet_down_blocks_0_attentions_0_proj_in")),
              1e-7);
    stack.restore();
    for (const auto& view : base.tensors()) EXPECT_TRUE(sameBytes(weights.at(view.name), view)) << view.name;

    // The same on the loaded SD 2.x model: its text encoder's output comes back exactly.
    auto model = loadSingleFileCheckpoint(path, easel::testing::overridesFor(cfg["sd2"], cfg["sd2"]["text_encoder"]));
    torch::NoGradGuard noGrad;
    const auto ids = torch::randint(0, model.detected.text.vocabSize, {1, model.detected.text.maxPositions});
    const auto hidden0 = model.textEncoder->encode(ids, 1).hidden;
    AdapterStack live(model);
    ASSERT_TRUE(live.apply({{adapter, strength, strength}}));
    EXPECT_FALSE(torch::equal(model.textEncoder->encode(ids, 1).hidden, hidden0));
    live.restore();
    EXPECT_TRUE(torch::equal(model.textEncoder->encode(ids, 1).hidden, hidden0));
}

TEST(AdapterStack, LoKrAndTuckerDeltasFollowLyCORIS) {
    easel::testing::TempDir dir;
    const auto base = SafetensorsFile::open(baseCheckpoint());
    const auto detected = detectSingleFile(base);
    const auto qKey = detected.unetPrefix + "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";
    const auto convKey = detected.unetPrefix + "input_blocks.1.0.in_layers.2.weight";
    const auto q = shapeIn(base, qKey);
    const auto conv = shapeIn(base, convKey);
    ASSERT_EQ(conv.size(), 4u);
    torch::manual_seed(5);
    const std::int64_t r = 2, o1 = 2, i1 = 2;
    ASSERT_EQ(q[0] % o1, 0);
    ASSERT_EQ(q[1] % i1, 0);
    const auto w1 = torch::randn({o1, i1});
    const auto w2a = torch::randn({q[0] / o1, r}), w2b = torch::randn({r, q[1] / i1});
    const auto mid = torch::randn({r, r, conv[2], conv[3]});
    const auto down = torch::randn({r, conv[1], 1, 1}), up = torch::randn({conv[0], r, 1, 1});
    const float alpha = 1.0f;
    const std::string lokr = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
    const std::string locon = "lora_unet_down_blocks_0_resnets_0_conv1";
    const auto adapter =
        openAdapter(writeAdapter(dir / "lycoris.safetensors", {{lokr + ".lokr_w1", w1},
                                                               {lokr + ".lokr_w2_a", w2a},
                                                               {lokr + ".lokr_w2_b", w2b},
                                                               {lokr + ".alpha", torch::tensor(alpha)},
                                                               {locon + ".lora_down.weight", down},
                                                               {locon + ".lora_mid.weight", mid},
                                                               {locon + ".lora_up.weight", up},
                                                               {locon + ".alpha", torch::tensor(alpha)}}));
    auto weights = readAll(base);
    AdapterStack stack(detected, weights);
    ASSERT_TRUE(stack.apply({{adapter, 1.0, 1.0}}));

    // Element by element, written out independently of the implementation.
    const auto w2 = torch::matmul(w2a.to(torch::kFloat64), w2b.to(torch::kFloat64));
    auto kron = torch::zeros({q[0], q[1]}, torch::kFloat64);
    const auto o2 = w2.size(0), i2 = w2.size(1);
    for (std::int64_t a = 0; a < o1; ++a)
        for (std::int64_t c = 0; c < i1; ++c)
            kron.narrow(0, a * o2, o2).narrow(1, c * i2, i2).copy_(w1[a][c].item<double>() * w2);
    const auto qExpected = (toTensor(base.at(qKey)).to(torch::kFloat64) + kron * (alpha / r)).to(torch::kFloat32);
    EXPECT_LE(easel::testing::maxAbsDiff(weights.at(qKey), qExpected), 1e-7);

    auto tucker = torch::zeros({conv[0], conv[1], conv[2], conv[3]}, torch::kFloat64);
    const auto u = up.to(torch::kFloat64).reshape({conv[0], r}), dn = down.to(torch::kFloat64).reshape({r, conv[1]});
    const auto m = mid.to(torch::kFloat64);
    for (std::int64_t a = 0; a < r; ++a)
        for (std::int64_t b = 0; b < r; ++b)
            tucker += u.select(1, a).reshape({-1, 1, 1, 1}) * dn.select(0, b).reshape({1, -1, 1, 1}) *
                      m[a][b].reshape({1, 1, conv[2], conv[3]});
    const auto convExpected =
        (toTensor(base.at(convKey)).to(torch::kFloat64) + tucker * (alpha / r)).to(torch::kFloat32);
    EXPECT_LE(easel::testing::maxAbsDiff(weights.at(convKey), convExpected), 1e-7);
}

// LCM-LoRA (and kohya's LoCon "all layers" runs) train every linear and convolution of the UNet, not
// only attention: resnet convs and shortcuts, time embedding, down/upsamplers, conv_in/conv_out. A rank-1
// kohya LoRA on every such weight of the model, named by its diffusers path, loads whole and changes
// each of them by exactly up * down * alpha / rank.
TEST(AdapterStack, ALoRAOnEveryUNetLayerAsLCMLoRATrainsLoadsWhole) {
    easel::testing::TempDir dir;
    const auto base = SafetensorsFile::open(baseCheckpoint());
    const auto detected = detectSingleFile(base);
    const auto layout = diffusersLayoutOf(detected);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    std::map<std::string, torch::Tensor> expectedDelta;  // original key -> change
    std::set<std::string> kinds;
    torch::manual_seed(11);
    for (const auto& t : base.tensors()) {
        if (!t.name.starts_with(detected.unetPrefix) || !t.name.ends_with(".weight")) continue;
        if (t.shape.size() != 2 && t.shape.size() != 4) continue;
        const auto diffusers = originalToDiffusersKey(t.name, layout);
        ASSERT_TRUE(diffusers) << t.name;
        auto path = diffusers->key.substr(0, diffusers->key.size() - std::strlen(".weight"));
        for (const auto* kind : {"resnets", "time_emb", "time_embedding", "downsamplers", "upsamplers", "conv_in",
                                 "conv_out", "conv_shortcut", "attn1", "attn2", "ff.net", "proj_in", "proj_out"}) {
            if (path.find(kind) != std::string::npos) kinds.insert(kind);
        }
        std::string kohya = "lora_unet_" + path;
        std::replace(kohya.begin(), kohya.end(), '.', '_');
        const bool conv = t.shape.size() == 4;
        const auto down =
            conv ? torch::randn({1, t.shape[1], t.shape[2], t.shape[3]}) * 0.01 : torch::randn({1, t.shape[1]}) * 0.01;
        const auto up = conv ? torch::randn({t.shape[0], 1, 1, 1}) : torch::randn({t.shape[0], 1});
        const float alpha = 0.5f;  // rank 1: scale 0.5
        tensors.emplace_back(kohya + ".lora_down.weight", down);
        tensors.emplace_back(kohya + ".lora_up.weight", up);
        tensors.emplace_back(kohya + ".alpha", torch::tensor(alpha));
        expectedDelta[t.name] =
            torch::matmul(up.reshape({t.shape[0], 1}).to(torch::kFloat64), down.reshape({1, -1}).to(torch::kFloat64))
                .reshape(t.shape) *
            alpha;
    }
    for (const auto* kind : {"resnets", "time_embedding", "downsamplers", "upsamplers", "conv_in", "conv_out", "attn1",
                             "attn2", "proj_in", "proj_out"})
        EXPECT_TRUE(kinds.contains(kind)) << kind << " is not in the model: the test covers less than it says";
    const auto adapter = openAdapter(writeAdapter(dir / "lcm-like.safetensors", tensors));
    auto weights = readAll(base);
    AdapterStack stack(detected, weights);
    ASSERT_TRUE(stack.apply({{adapter, 1.0, 1.0}}));
    for (const auto& [key, delta] : expectedDelta) {
        const auto expected = (toTensor(base.at(key)).to(torch::kFloat64) + delta).to(torch::kFloat32);
        ASSERT_LE(easel::testing::maxAbsDiff(weights.at(key), expected), 1e-6) << key;
    }
    std::cout << "  " << expectedDelta.size() << " UNet layers changed\n";
}

// The engine's other modes: bf16 on the CPU, float32 and float16 on CUDA (skipped without a device
// unless EASEL_REQUIRE_CUDA=1). The merge rounds once to the weights' dtype; restore is bit-exact.
TEST(AdapterStack, MergesInTheModelsDeviceAndDtypeAndRestoresExactly) {
    struct Mode {
        torch::Device device;
        torch::Dtype dtype;
        double relativeTolerance;  // half an ulp of the dtype, relative to the tensor's largest value
    };
    std::vector<Mode> modes{{torch::kCPU, torch::kBFloat16, 1.0 / 256}};
    if (torch::cuda::is_available()) {
        modes.push_back({torch::Device(torch::kCUDA), torch::kFloat32, 1e-7});
        modes.push_back({torch::Device(torch::kCUDA), torch::kFloat16, 1.0 / 2048});
    } else if (const char* require = std::getenv("EASEL_REQUIRE_CUDA"); require && std::string(require) == "1") {
        FAIL() << "EASEL_REQUIRE_CUDA=1 but no CUDA device";
    }
    const auto lora = openAdapter(adapterFile(reference()["lora"]["file_kohya"].get<std::string>()));
    const auto e = expectedMerges().front();
    const auto adapter = e.kind == "lora" ? lora : openAdapter(adapterFile(filesOf(e.kind).front()));
    const auto merged = SafetensorsFile::open(adapterFile(e.mergedFile));
    for (const auto& mode : modes) {
        SCOPED_TRACE(mode.device.str() + " " + std::string(c10::toString(mode.dtype)));
        auto model = loadSingleFileCheckpoint(baseCheckpoint(), sd1Overrides());
        model.unet->to(mode.device, mode.dtype);
        model.textModule->to(mode.device, mode.dtype);
        std::map<std::string, torch::Tensor> before;
        for (const auto& [key, value] : liveParameters(model)) before.emplace(key, value.clone());
        AdapterStack stack(model);
        ASSERT_TRUE(stack.apply({{adapter, e.strength, e.strength}}));
        const auto adapted = targetKeys(*adapter, stack.keyMap());
        for (const auto& [key, value] : liveParameters(model)) {
            ASSERT_EQ(value.device(), mode.device) << key;
            ASSERT_EQ(value.scalar_type(), mode.dtype) << key;
            if (!adapted.contains(key)) {
                EXPECT_TRUE(torch::equal(value, before.at(key))) << key;
                continue;
            }
            const auto expected = toTensor(merged.at(key));
            const double scale = std::max(1.0, expected.abs().max().item<double>());
            EXPECT_LE(easel::testing::maxAbsDiff(value.cpu(), expected), mode.relativeTolerance * scale) << key;
        }
        stack.restore();
        for (const auto& [key, value] : liveParameters(model)) EXPECT_TRUE(torch::equal(value, before.at(key))) << key;
    }
}
