// LoRAs and textual-inversion embeddings on SDXL, against the tiny SDXL reference set
// (tests/data/reference/sdxl). The name mapping is checked against the set's own diffusers folder (the
// same weights under diffusers names): a module named after a diffusers weight must change the
// checkpoint weight that holds the same numbers. Merges are checked against W + strength · alpha/rank ·
// up @ down computed here, in kohya and diffusers naming alike, and embeddings against the vocabulary's
// own rows: an embedding made of a word's token rows must condition exactly like that word.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "inference/adapters/adapter.h"
#include "inference/adapters/adapter_key_map.h"
#include "inference/adapters/adapter_stack.h"
#include "inference/adapters/embedding.h"
#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/pipelines/conditioner.h"
#include "inference/pipelines/sdxl_conditioning.h"
#include "inference/tensor_utils.h"
#include "inference/tokenizer/clip_tokenizer.h"
#include "reference_sdxl_folder.h"
#include "reference_vectors.h"
#include "temp_dir.h"
#include "tensor_files.h"

using namespace easel::inference;
using easel::testing::NamedTensors;
using easel::testing::writeTensorFile;

namespace {

std::string underscored(std::string s) {
    std::replace(s.begin(), s.end(), '.', '_');
    return s;
}

std::string stripWeight(const std::string& key) { return key.substr(0, key.size() - std::string(".weight").size()); }

std::map<std::string, torch::Tensor> readAll(const SafetensorsFile& file) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& t : file.tensors()) out.emplace(t.name, toTensor(t));
    return out;
}

std::string adapterErrorOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const AdapterError& e) {
        std::cout << "  AdapterError: " << e.what() << "\n";
        return e.what();
    }
    return "(no AdapterError)";
}

// The weights a LoRA can change in one component file of the diffusers folder: Linear and Conv2d
// weights, without the token / position embeddings and text_projection (no trainer adapts them).
std::vector<const TensorView*> adaptable(const SafetensorsFile& file) {
    std::vector<const TensorView*> out;
    for (const auto& t : file.tensors()) {
        const bool matrix = t.shape.size() == 2 || t.shape.size() == 4;
        if (!matrix || !t.name.ends_with(".weight")) continue;
        if (t.name.find("embeddings.") != std::string::npos || t.name.starts_with("text_projection")) continue;
        out.push_back(&t);
    }
    return out;
}

// A rank-1 LoRA module for a weight of this shape: down [1, in, k...], up [out, 1, 1...].
void addRankOne(NamedTensors& tensors, const std::string& name, const std::vector<std::int64_t>& shape,
                const std::string& downSuffix, const std::string& upSuffix) {
    auto downShape = shape;
    downShape[0] = 1;
    std::vector<std::int64_t> upShape(shape.size(), 1);
    upShape[0] = shape[0];
    tensors.emplace_back(name + downSuffix, torch::randn(downShape));
    tensors.emplace_back(name + upSuffix, torch::randn(upShape));
}

struct Component {
    std::string folder;      // in the diffusers folder
    std::string peftPrefix;  // diffusers / PEFT module prefix
    std::string kohyaPrefix;
};
const Component kComponents[] = {{"unet/diffusion_pytorch_model.safetensors", "unet.", "lora_unet_"},
                                 {"text_encoder/model.safetensors", "text_encoder.", "lora_te1_"},
                                 {"text_encoder_2/model.safetensors", "text_encoder_2.", "lora_te2_"}};

SafetensorsFile diffusersFile(const Component& c) {
    return SafetensorsFile::open(
        easel::testing::referenceFile(easel::testing::referenceSDXLSet() + "diffusers/" + c.folder));
}

// The part of the checkpoint weight a resolved module changes, shaped like `like`.
torch::Tensor targetPart(const SafetensorsFile& checkpoint, const AdapterTarget& target, const TensorView& like) {
    return toTensor(checkpoint.at(target.key)).narrow(0, target.rowOffset, target.shape.at(0)).reshape(like.shape);
}

}  // namespace

TEST(SDXLAdapterNames, EveryDiffusersAndKohyaNameReachesTheWeightWithTheSameNumbers) {
    easel::testing::TempDir dir;
    const auto checkpoint = SafetensorsFile::open(easel::testing::referenceSDXLCheckpoint());
    const auto detected = detectSingleFile(checkpoint, easel::testing::referenceSDXLOverrides());
    ASSERT_EQ(detected.family, ModelFamily::SDXL);
    const auto map = AdapterKeyMap::fromCheckpoint(detected, checkpoint);
    torch::manual_seed(1);

    // diffusers / PEFT ("unet.down_blocks.1....lora_A.weight") and kohya with diffusers module names
    // ("lora_unet_down_blocks_1_...", "lora_te1_text_model_...", "lora_te2_text_model_...").
    for (const bool peft : {true, false}) {
        SCOPED_TRACE(peft ? "PEFT names" : "kohya names");
        NamedTensors tensors;
        std::map<std::string, std::pair<const Component*, std::string>> expected;  // module name -> its weight
        std::vector<SafetensorsFile> files;
        for (const auto& c : kComponents) files.push_back(diffusersFile(c));
        for (std::size_t i = 0; i < files.size(); ++i) {
            for (const auto* t : adaptable(files[i])) {
                const auto path = stripWeight(t->name);
                const auto name =
                    peft ? kComponents[i].peftPrefix + path : kComponents[i].kohyaPrefix + underscored(path);
                addRankOne(tensors, name, t->shape, peft ? ".lora_A.weight" : ".lora_down.weight",
                           peft ? ".lora_B.weight" : ".lora_up.weight");
                expected.emplace(name, std::pair{&kComponents[i], t->name});
            }
        }
        const auto adapter =
            Adapter::open(writeTensorFile(dir / (peft ? "peft.safetensors" : "kohya.safetensors"), tensors));
        EXPECT_EQ(adapter.base(), AdapterBase::SDXL);
        const auto resolved = resolveAdapter(adapter, map);  // throws, naming them, when any module matches nothing
        ASSERT_EQ(resolved.size(), expected.size());
        std::map<std::string, int> perComponent;
        for (const auto& r : resolved) {
            const auto& [component, key] = expected.at(r.module->name);
            const auto file = diffusersFile(*component);
            EXPECT_TRUE(torch::equal(targetPart(checkpoint, r.target, file.at(key)), toTensor(file.at(key))))
                << r.module->name << " -> " << r.target.key;
            ++perComponent[component->peftPrefix];
        }
        EXPECT_GT(perComponent["unet."], 0);
        EXPECT_GT(perComponent["text_encoder."], 0);
        EXPECT_GT(perComponent["text_encoder_2."], 0);
        std::cout << "  " << resolved.size() << " modules: UNet " << perComponent["unet."] << ", text encoder 1 "
                  << perComponent["text_encoder."] << ", text encoder 2 " << perComponent["text_encoder_2."] << "\n";
    }

    // kohya's SDXL trainer names UNet modules after sgm's module paths ("lora_unet_input_blocks_4_1_...").
    NamedTensors sgm;
    std::set<std::string> keys;
    for (const auto& t : checkpoint.tensors()) {
        if (!t.name.starts_with(detected.unetPrefix) || !t.name.ends_with(".weight")) continue;
        if (t.shape.size() != 2 && t.shape.size() != 4) continue;
        addRankOne(sgm, "lora_unet_" + underscored(stripWeight(t.name.substr(detected.unetPrefix.size()))), t.shape,
                   ".lora_down.weight", ".lora_up.weight");
        keys.insert(t.name);
    }
    const auto sgmAdapter = Adapter::open(writeTensorFile(dir / "sgm.safetensors", sgm));
    const auto resolved = resolveAdapter(sgmAdapter, map);
    ASSERT_EQ(resolved.size(), keys.size());
    for (const auto& r : resolved) {
        EXPECT_EQ("lora_unet_" + underscored(stripWeight(r.target.key.substr(detected.unetPrefix.size()))),
                  r.module->name);
        EXPECT_EQ(r.target.rowOffset, 0);
    }
}

TEST(SDXLAdapterStack, MergesIntoTheUNetAndBothTextEncodersWithTheirStrengths) {
    easel::testing::TempDir dir;
    const auto path = easel::testing::referenceSDXLCheckpoint();
    const auto checkpoint = SafetensorsFile::open(path);
    const auto detected = detectSingleFile(checkpoint, easel::testing::referenceSDXLOverrides());
    const std::string te1 = detected.textPrefix + "text_model.encoder.layers.0.self_attn.q_proj.weight";
    const std::string fused = detected.text2Prefix + "transformer.resblocks.1.attn.in_proj_weight";
    const std::string fc1 = detected.text2Prefix + "transformer.resblocks.0.mlp.c_fc.weight";
    const std::string toK = detected.unetPrefix + "input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight";
    const std::string label = detected.unetPrefix + "label_emb.0.0.weight";
    const std::string conv = detected.unetPrefix + "input_blocks.1.0.in_layers.2.weight";
    const auto shape = [&](const std::string& key) { return checkpoint.at(key).shape; };
    const auto d = shape(fused)[0] / 3;

    // One module per place, each under its kohya and its diffusers name (the diffusers paths of the
    // tiny geometry: input_blocks.3.1 is down_blocks.1.attentions.0, input_blocks.1.0 down_blocks.0.resnets.0).
    struct Module {
        std::string kohya, diffusers, key;
        std::int64_t rowOffset, rows;
        std::vector<std::int64_t> downShape, upShape;
    };
    const std::int64_t rank = 2;
    const auto linear = [&](std::int64_t out, std::int64_t in) {
        return std::pair{std::vector<std::int64_t>{rank, in}, std::vector<std::int64_t>{out, rank}};
    };
    const auto [cvDown, cvUp] =
        std::pair{std::vector<std::int64_t>{rank, shape(conv)[1], shape(conv)[2], shape(conv)[3]},
                  std::vector<std::int64_t>{shape(conv)[0], rank, 1, 1}};
    const std::vector<Module> modules = {
        {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
         "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", te1, 0, shape(te1)[0],
         linear(shape(te1)[0], shape(te1)[1]).first, linear(shape(te1)[0], shape(te1)[1]).second},
        {"lora_te2_text_model_encoder_layers_1_self_attn_k_proj",
         "text_encoder_2.text_model.encoder.layers.1.self_attn.k_proj", fused, d, d, linear(d, shape(fused)[1]).first,
         linear(d, shape(fused)[1]).second},
        {"lora_te2_text_model_encoder_layers_0_mlp_fc1", "text_encoder_2.text_model.encoder.layers.0.mlp.fc1", fc1, 0,
         shape(fc1)[0], linear(shape(fc1)[0], shape(fc1)[1]).first, linear(shape(fc1)[0], shape(fc1)[1]).second},
        {"lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k",
         "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", toK, 0, shape(toK)[0],
         linear(shape(toK)[0], shape(toK)[1]).first, linear(shape(toK)[0], shape(toK)[1]).second},
        {"lora_unet_label_emb_0_0", "unet.add_embedding.linear_1", label, 0, shape(label)[0],
         linear(shape(label)[0], shape(label)[1]).first, linear(shape(label)[0], shape(label)[1]).second},
        {"lora_unet_input_blocks_1_0_in_layers_2", "unet.down_blocks.0.resnets.0.conv1", conv, 0, shape(conv)[0],
         cvDown, cvUp},
    };
    torch::manual_seed(7);
    const float alpha = 1.5f;
    NamedTensors kohya, diffusers;
    std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> factors;
    for (const auto& m : modules) {
        const auto down = torch::randn(m.downShape), up = torch::randn(m.upShape);
        factors[m.kohya] = {down, up};
        kohya.insert(kohya.end(), {{m.kohya + ".lora_down.weight", down},
                                   {m.kohya + ".lora_up.weight", up},
                                   {m.kohya + ".alpha", torch::tensor(alpha)}});
        diffusers.insert(diffusers.end(), {{m.diffusers + ".lora_A.weight", down},
                                           {m.diffusers + ".lora_B.weight", up},
                                           {m.diffusers + ".alpha", torch::tensor(alpha)}});
    }
    const auto kohyaFile = std::make_shared<const Adapter>(Adapter::open(
        writeTensorFile(dir / "xl_kohya.safetensors", kohya, {{"ss_base_model_version", "sdxl_base_v1-0"}})));
    const auto diffusersFile =
        std::make_shared<const Adapter>(Adapter::open(writeTensorFile(dir / "xl_peft.safetensors", diffusers)));
    EXPECT_EQ(kohyaFile->base(), AdapterBase::SDXL);
    EXPECT_EQ(diffusersFile->base(), AdapterBase::SDXL);

    const double unetStrength = 0.6, textStrength = 0.9;
    auto weights = readAll(checkpoint);
    AdapterStack stack(detected, weights);
    ASSERT_TRUE(stack.apply({{kohyaFile, unetStrength, textStrength}}));
    std::set<std::string> changed;
    for (const auto& m : modules) {
        SCOPED_TRACE(m.kohya);
        changed.insert(m.key);
        const auto& [down, up] = factors.at(m.kohya);
        const bool unet = m.key.starts_with(detected.unetPrefix);
        const double factor = (unet ? unetStrength : textStrength) * alpha / rank;
        auto expected = toTensor(checkpoint.at(m.key)).to(torch::kFloat64);
        auto part = expected.narrow(0, m.rowOffset, m.rows);
        part.add_((up.to(torch::kFloat64).reshape({m.rows, rank}).matmul(down.to(torch::kFloat64).reshape({rank, -1})))
                      .reshape(part.sizes()) *
                  factor);
        const auto live = weights.at(m.key);
        if (m.key != fused) {
            EXPECT_LE(easel::testing::maxAbsDiff(live, expected.to(torch::kFloat32)), 1e-6);
        }
        EXPECT_LE(easel::testing::maxAbsDiff(live.narrow(0, m.rowOffset, m.rows), part.to(torch::kFloat32)), 1e-6);
        EXPECT_FALSE(torch::equal(live.narrow(0, m.rowOffset, m.rows),
                                  toTensor(checkpoint.at(m.key)).narrow(0, m.rowOffset, m.rows)));
    }
    // The query and value rows of the fused weight, and every weight no module names, stay as they were.
    const auto base = toTensor(checkpoint.at(fused));
    EXPECT_TRUE(torch::equal(weights.at(fused).narrow(0, 0, d), base.narrow(0, 0, d)));
    EXPECT_TRUE(torch::equal(weights.at(fused).narrow(0, 2 * d, d), base.narrow(0, 2 * d, d)));
    for (const auto& view : checkpoint.tensors()) {
        if (!changed.contains(view.name)) {
            EXPECT_TRUE(torch::equal(weights.at(view.name), toTensor(view))) << view.name;
        }
    }

    // The diffusers names give the same weights, bit for bit.
    auto weights2 = readAll(checkpoint);
    AdapterStack stack2(detected, weights2);
    ASSERT_TRUE(stack2.apply({{diffusersFile, unetStrength, textStrength}}));
    for (const auto& key : changed) EXPECT_TRUE(torch::equal(weights.at(key), weights2.at(key))) << key;

    // On the loaded model: both encoders' outputs and the UNet's change, and come back exactly.
    auto model = loadSingleFileCheckpoint(path, easel::testing::referenceSDXLOverrides());
    torch::NoGradGuard noGrad;
    const auto ids = torch::randint(0, std::min(model.detected.text.vocabSize, model.detected.text2->vocabSize),
                                    {1, model.detected.text.maxPositions});
    const auto& u = model.detected.unet;
    const auto x = torch::randn({1, u.inChannels, 8, 8});
    const auto t = torch::full({1}, 500.0f);
    const auto context = torch::randn({1, model.detected.text.maxPositions, u.contextDim});
    const auto y = torch::randn({1, u.admInChannels});
    const auto text0 = encodeSDXLText(model, ids, ids, 1);
    const auto eps0 = model.unet->forward(x, t, context, y);
    AdapterStack live(model);
    ASSERT_TRUE(live.apply({{kohyaFile, unetStrength, textStrength}}));
    const auto text1 = encodeSDXLText(model, ids, ids, 1);
    const auto d1 = model.detected.text.hiddenSize;
    EXPECT_FALSE(torch::equal(text1.context.narrow(-1, 0, d1), text0.context.narrow(-1, 0, d1)));
    EXPECT_FALSE(torch::equal(text1.context.narrow(-1, d1, text0.context.size(-1) - d1),
                              text0.context.narrow(-1, d1, text0.context.size(-1) - d1)));
    EXPECT_FALSE(torch::equal(text1.pooled, text0.pooled));
    EXPECT_FALSE(torch::equal(model.unet->forward(x, t, context, y), eps0));
    ASSERT_TRUE(live.apply({}));
    EXPECT_TRUE(torch::equal(encodeSDXLText(model, ids, ids, 1).context, text0.context));
    EXPECT_TRUE(torch::equal(encodeSDXLText(model, ids, ids, 1).pooled, text0.pooled));
    EXPECT_TRUE(torch::equal(model.unet->forward(x, t, context, y), eps0));
}

TEST(SDXLAdapterErrors, AnSD1LoRAFitsNoSDXLModelAndSaysSo) {
    easel::testing::TempDir dir;
    const auto checkpoint = SafetensorsFile::open(easel::testing::referenceSDXLCheckpoint());
    const auto detected = detectSingleFile(checkpoint, easel::testing::referenceSDXLOverrides());
    const auto map = AdapterKeyMap::fromCheckpoint(detected, checkpoint);
    const auto q = checkpoint.at(detected.textPrefix + "text_model.encoder.layers.0.self_attn.q_proj.weight").shape;
    // SD 1.x's text encoder is SDXL's first one, same names and (here) shapes: kohya's "lora_te_" still
    // never lands on it, as kohya and A1111 name SDXL's "lora_te1_".
    NamedTensors sd1;
    addRankOne(sd1, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", q, ".lora_down.weight", ".lora_up.weight");
    const auto adapter =
        Adapter::open(writeTensorFile(dir / "sd1.safetensors", sd1, {{"ss_base_model_version", "sd_v1"}}));
    const auto message = adapterErrorOf([&] { resolveAdapter(adapter, map); });
    EXPECT_NE(message.find("SDXL"), std::string::npos) << message;
    EXPECT_NE(message.find("SD 1.x"), std::string::npos) << message;
    EXPECT_NE(message.find("lora_te_text_model_encoder_layers_0_self_attn_q_proj"), std::string::npos) << message;

    // diffusers names SDXL's first encoder "text_encoder." as it names SD 1.x's only one: a text-encoder-only
    // SD 1.x file would fit it exactly. Its metadata says what it is made for, and that refuses it; without
    // metadata nothing can tell the two apart, and it applies.
    NamedTensors te;
    addRankOne(te, "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", q, ".lora_A.weight", ".lora_B.weight");
    const auto labelled =
        Adapter::open(writeTensorFile(dir / "te_sd1.safetensors", te, {{"ss_base_model_version", "sd_v1"}}));
    const auto refused = adapterErrorOf([&] { resolveAdapter(labelled, map); });
    EXPECT_NE(refused.find("is an adapter for SD 1.x"), std::string::npos) << refused;
    EXPECT_NE(refused.find("SDXL"), std::string::npos) << refused;
    const auto unlabelled = Adapter::open(writeTensorFile(dir / "te.safetensors", te));
    EXPECT_EQ(resolveAdapter(unlabelled, map).size(), 1u);
}

namespace {

// The real CLIP ids the conditioner speaks, fed to the tiny encoders as the set's tiny_mapping says:
// BOS and EOS to the encoder's own, any other id modulo the smaller of the two.
class TinyVocabEncoder : public TextEncoder {
public:
    TinyVocabEncoder(std::shared_ptr<TextEncoder> inner, std::int64_t bos, std::int64_t eos)
        : m_inner(std::move(inner)), m_bos(bos), m_eos(eos) {}
    torch::Tensor map(const torch::Tensor& ids) const {
        const auto content = ids.to(torch::kLong).remainder(std::min(m_bos, m_eos));
        return torch::where(ids == kBos, torch::full_like(content, m_bos),
                            torch::where(ids == kEos, torch::full_like(content, m_eos), content));
    }
    TextEncoderOutput encode(const torch::Tensor& ids, int clipSkip) override {
        return m_inner->encode(map(ids), clipSkip);
    }
    TextEncoderOutput encodeWithOverride(const torch::Tensor& ids, int clipSkip,
                                         const TokenEmbeddingOverride& override) override {
        return m_inner->encodeWithOverride(map(ids), clipSkip, override);
    }
    const TextEncoderConfig& textConfig() const override { return m_inner->textConfig(); }
    torch::nn::Module& module() override { return m_inner->module(); }

    static constexpr std::int64_t kBos = 49406, kEos = 49407;

private:
    std::shared_ptr<TextEncoder> m_inner;
    std::int64_t m_bos, m_eos;
};

const CLIPTokenizer& clipTokenizer() {
    static const auto tokenizer = CLIPTokenizer::fromBpeGz(easel::testing::referenceSDXLVocabulary());
    return tokenizer;
}

// The tiny SDXL model behind the real vocabulary; the BOS / EOS ids of each encoder come from the
// diffusers folder's configs.
StableDiffusionModel tinySDXLWithRealVocab() {
    auto model =
        loadSingleFileCheckpoint(easel::testing::referenceSDXLCheckpoint(), easel::testing::referenceSDXLOverrides());
    const auto set = easel::testing::referenceSDXLSet();
    for (const auto& [folder, encoder] :
         {std::pair{"text_encoder", &model.textEncoder}, {"text_encoder_2", &model.textEncoder2}}) {
        const auto cfg = easel::testing::referenceJson(set + "diffusers/" + folder + "/config.json");
        *encoder = std::make_shared<TinyVocabEncoder>(*encoder, cfg.at("bos_token_id").get<std::int64_t>(),
                                                      cfg.at("eos_token_id").get<std::int64_t>());
    }
    model.detected.text.vocabSize = clipTokenizer().vocabSize();
    model.detected.text2->vocabSize = clipTokenizer().vocabSize();
    return model;
}

// Row `id` (a real CLIP id, mapped as the encoders map it) of an encoder's token-embedding table.
torch::Tensor tokenRow(StableDiffusionModel& model, bool second, std::int64_t id) {
    auto& encoder = dynamic_cast<TinyVocabEncoder&>(second ? *model.textEncoder2 : *model.textEncoder);
    const auto tiny = encoder.map(torch::tensor({id})).item<std::int64_t>();
    for (const auto& p : encoder.module().named_parameters(true)) {
        if (p.key().ends_with("token_embedding.weight")) return p.value()[tiny].clone();
    }
    throw std::runtime_error("no token_embedding.weight");
}

std::int64_t singleToken(const std::string& word) {
    const auto ids = clipTokenizer().encode(word);
    if (ids.size() != 1) throw std::runtime_error("'" + word + "' is not one token");
    return ids.front();
}

}  // namespace

TEST(SDXLEmbedding, ClipLAndClipGVectorsStandInForTheirWordInEachEncoder) {
    easel::testing::TempDir dir;
    auto model = tinySDXLWithRealVocab();
    torch::NoGradGuard noGrad;
    const auto cat = singleToken("cat"), dog = singleToken("dog");
    // clip_l takes the place of "cat" in encoder 1 and clip_g of "dog" in encoder 2.
    const auto path = writeTensorFile(
        dir / "catdog.safetensors",
        {{"clip_l", tokenRow(model, false, cat).unsqueeze(0)}, {"clip_g", tokenRow(model, true, dog).unsqueeze(0)}});
    const auto ti = loadTextualInversion(path);
    ASSERT_TRUE(ti.isSDXL());
    const Conditioner withTI(model, &clipTokenizer(), nullptr, torch::kCPU, {ti});
    const Conditioner plain(model, &clipTokenizer(), nullptr, torch::kCPU);

    const auto c = withTI.encode("a photo of catdog on grass", "", 1, 3);
    const auto asCat = plain.encode("a photo of cat on grass", "", 1, 3);
    const auto asDog = plain.encode("a photo of dog on grass", "", 1, 3);
    const auto d1 = model.detected.text.hiddenSize;
    const auto d2 = c.cond.size(-1) - d1;
    EXPECT_TRUE(torch::allclose(c.cond.narrow(-1, 0, d1), asCat.cond.narrow(-1, 0, d1), 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(c.cond.narrow(-1, d1, d2), asDog.cond.narrow(-1, d1, d2), 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(c.condPooled, asDog.condPooled, 1e-5, 1e-6));  // the pooled output is encoder 2's
    EXPECT_FALSE(torch::allclose(asCat.cond.narrow(-1, d1, d2), asDog.cond.narrow(-1, d1, d2), 1e-3, 1e-3));
    // The trigger word works in the negative prompt too, and in a second chunk.
    const auto negative = withTI.encode("grass", "catdog", 1, 3);
    EXPECT_TRUE(torch::allclose(negative.uncond.narrow(-1, 0, d1),
                                plain.encode("grass", "cat", 1, 3).uncond.narrow(-1, 0, d1), 1e-5, 1e-6));
    std::string longPrompt;
    for (int i = 0; i < 80; ++i) longPrompt += "grass ";
    const auto twoChunks = withTI.encode(longPrompt + "catdog", "", 1, 3);
    const auto twoChunksDog = plain.encode(longPrompt + "dog", "", 1, 3);
    ASSERT_EQ(twoChunks.cond.size(1), 2 * model.detected.text.maxPositions);
    EXPECT_TRUE(torch::allclose(twoChunks.cond.narrow(-1, d1, d2), twoChunksDog.cond.narrow(-1, d1, d2), 1e-5, 1e-6));
}

TEST(SDXLEmbedding, RefusesEmbeddingsOfAnotherFamilyOrWidth) {
    easel::testing::TempDir dir;
    auto model = tinySDXLWithRealVocab();
    const auto& text = model.detected.text;
    const auto& text2 = *model.detected.text2;
    auto errorOf = [&](const TextualInversion& e) {
        try {
            (void)Conditioner(model, &clipTokenizer(), nullptr, torch::kCPU, {e});
        } catch (const EmbeddingError& error) {
            std::cout << "  EmbeddingError: " << error.what() << "\n";
            return std::string(error.what());
        }
        return std::string("(no EmbeddingError)");
    };
    const auto sd1 = loadTextualInversion(
        writeTensorFile(dir / "one.safetensors", {{"emb_params", torch::zeros({1, text.hiddenSize})}}));
    auto message = errorOf(sd1);
    EXPECT_NE(message.find("SDXL"), std::string::npos) << message;
    EXPECT_NE(message.find("clip_g"), std::string::npos) << message;
    const auto narrowG = loadTextualInversion(writeTensorFile(
        dir / "narrow.safetensors",
        {{"clip_l", torch::zeros({1, text.hiddenSize})}, {"clip_g", torch::zeros({1, text2.hiddenSize + 8})}}));
    message = errorOf(narrowG);
    EXPECT_NE(message.find(std::to_string(text2.hiddenSize + 8)), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(text2.hiddenSize)), std::string::npos) << message;
    EXPECT_NE(message.find("clip_g"), std::string::npos) << message;
}

TEST(SDXLAdapterEngine, ALoRAChangesTheImageAndTheNextRequestWithoutItIsTheBaseAgain) {
    easel::testing::TempDir dir;
    Engine engine;
    engine.loadModel(easel::testing::referenceSDXLFolder(dir));
    const auto [width, height] = easel::testing::referenceSDXLImageSize();
    const auto checkpoint = SafetensorsFile::open(easel::testing::referenceSDXLCheckpoint());
    const auto detected = detectSingleFile(checkpoint, easel::testing::referenceSDXLOverrides());
    torch::manual_seed(11);
    NamedTensors tensors;
    for (const auto& key : {"input_blocks.3.1.transformer_blocks.0.attn2.to_v", "output_blocks.0.1.proj_out",
                            "middle_block.1.transformer_blocks.1.ff.net.2"}) {
        const auto shape = checkpoint.at(detected.unetPrefix + key + std::string(".weight")).shape;
        addRankOne(tensors, "lora_unet_" + underscored(key), shape, ".lora_down.weight", ".lora_up.weight");
    }
    const auto loraPath = writeTensorFile(dir / "xl_style.safetensors", tensors);

    GenerationRequest r;
    r.prompt = "a red circle";
    r.width = width;
    r.height = height;
    r.steps = 2;
    r.seed = 5;
    const auto base = engine.generate(r);
    r.loras.push_back({"xl_style", loraPath, 1.0, 1.0});
    const auto withLora = engine.generate(r);
    ASSERT_EQ(withLora.images.size(), 1u);
    EXPECT_NE(withLora.images[0].rgb, base.images[0].rgb);
    EXPECT_NE(withLora.infotexts[0].find("<lora:xl_style:1"), std::string::npos) << withLora.infotexts[0];
    r.loras.clear();
    EXPECT_EQ(engine.generate(r).images[0].rgb, base.images[0].rgb);
}
