// Textual inversion against the shared adapter reference (adapters/README.md, "Textual inversion"): the
// embedding file, the text encoder with the vectors at the reference positions (the override path), the same
// from the prompt text through the tokenizer and the Conditioner, and the loader's refusals. The trigger
// word, prompt, vector count, positions and tolerances all come from adapter_reference.json and the tensors.

#include "inference/adapters/embedding.h"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "inference/loading/checkpoint_loader.h"
#include "inference/pipelines/conditioner.h"
#include "inference/tensor_utils.h"
#include "inference/tokenizer/prompt_parser.h"
#include "reference_models.h"
#include "temp_dir.h"
#include "tensor_files.h"

using namespace easel::inference;
using easel::testing::maxAbsDiff;
using easel::testing::parityTolerance;
using easel::testing::ReferenceVectors;
using easel::testing::TempDir;

namespace {

nlohmann::json tiSection() {
    return easel::testing::referenceJson("adapters/adapter_reference.json").at("textual_inversion");
}

std::filesystem::path embeddingFile() {
    return easel::testing::referenceFile("adapters/" + tiSection().at("embedding_file").get<std::string>());
}

const ReferenceVectors& vectors() {
    static const ReferenceVectors v("adapters/ti_vectors.safetensors");
    return v;
}

const CLIPTokenizer& tokenizer() {
    static const CLIPTokenizer t =
        CLIPTokenizer::fromBpeGz(easel::testing::referenceFile("bpe_simple_vocab_16e6.txt.gz"));
    return t;
}

StableDiffusionModel loadSd1() {
    const auto cfg = easel::testing::referenceConfig();
    return loadSingleFileCheckpoint(easel::testing::referenceFile(cfg["checkpoint"]["file"].get<std::string>()),
                                    easel::testing::overridesFor(cfg, cfg["text_encoder"]));
}

// The tiny encoder's reduced vocabulary (adapters/README.md): real content ids are taken modulo the first
// special id, BOS and EOS/padding get the two special ids. The special ids are read from the baseline row
// (its first and last positions), and the rule is checked against the stored real-vocabulary ids.
struct ReducedVocab {
    std::int64_t bos = 0, eos = 0, modulus = 0;

    static ReducedVocab fromReference() {
        const auto ids = vectors()["baseline.input_ids"];
        ReducedVocab r;
        r.bos = ids[0][0].item<std::int64_t>();
        r.eos = ids[0][ids.size(1) - 1].item<std::int64_t>();
        r.modulus = std::min(r.bos, r.eos);
        return r;
    }
    torch::Tensor map(const torch::Tensor& real) const {
        const auto content = real.to(torch::kLong).remainder(modulus);
        return torch::where(real == tokenizer().bosId(), torch::full_like(content, bos),
                            torch::where(real == tokenizer().eosId(), torch::full_like(content, eos), content));
    }
};

// Lets the Conditioner, which speaks real CLIP ids, drive the tiny encoder.
class ReducedVocabEncoder : public TextEncoder {
public:
    ReducedVocabEncoder(std::shared_ptr<TextEncoder> inner, ReducedVocab vocab)
        : m_inner(std::move(inner)), m_vocab(vocab) {}
    TextEncoderOutput encode(const torch::Tensor& ids, int clipSkip) override {
        return m_inner->encode(m_vocab.map(ids), clipSkip);
    }
    TextEncoderOutput encodeWithOverride(const torch::Tensor& ids, int clipSkip,
                                         const TokenEmbeddingOverride& override) override {
        return m_inner->encodeWithOverride(m_vocab.map(ids), clipSkip, override);
    }
    const TextEncoderConfig& textConfig() const override { return m_inner->textConfig(); }
    torch::nn::Module& module() override { return m_inner->module(); }

private:
    std::shared_ptr<TextEncoder> m_inner;
    ReducedVocab m_vocab;
};

// The tiny model with its encoder behind the real vocabulary.
StableDiffusionModel loadSd1WithRealVocab() {
    auto model = loadSd1();
    model.textEncoder = std::make_shared<ReducedVocabEncoder>(model.textEncoder, ReducedVocab::fromReference());
    model.detected.text.vocabSize = tokenizer().vocabSize();
    return model;
}

TokenEmbeddingOverride referenceOverride(const TextualInversion& e) {
    const auto& v = vectors();
    return {v["ti.embedding_positions"].reshape({-1}),
            e.vectors.index_select(0, v["ti.embedding_vector_index"].reshape({-1}).to(torch::kLong))};
}

// A1111's original emphasis on a reference output: scale by the weights, then restore the mean.
torch::Tensor emphasised(const torch::Tensor& z, const torch::Tensor& weights) {
    auto out = z * weights.to(z.dtype()).view({1, -1, 1});
    return out * (z.mean() / out.mean());
}

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
    for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
        text.replace(pos, from.size(), to);
    return text;
}

std::filesystem::path writeTensors(const TempDir& dir, const std::string& name,
                                   const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
    return easel::testing::writeTensorFile(dir / name, tensors);
}

template <typename F>
std::string embeddingErrorOf(F f) {
    try {
        f();
    } catch (const EmbeddingError& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected an EmbeddingError";
    return {};
}

}  // namespace

TEST(Embedding, LoadsTheKohyaFileUnderItsFileName) {
    const auto ti = tiSection();
    const auto e = loadTextualInversion(embeddingFile());
    EXPECT_EQ(e.name, ti.at("trigger_word").get<std::string>());
    EXPECT_EQ(e.format, EmbeddingFormat::EmbParams);
    EXPECT_EQ(e.tensorKey, "emb_params");
    EXPECT_FALSE(e.isSDXL());
    EXPECT_EQ(e.numVectors(), ti.at("n_vectors").get<int>());
    EXPECT_EQ(e.dim(), ti.at("hidden_size").get<int>());
    EXPECT_TRUE(torch::equal(e.vectors, vectors()["ti.emb_params"].to(torch::kFloat32)));
    EXPECT_EQ(loadTextualInversion(embeddingFile(), "my-style").name, "my-style");
}

TEST(Embedding, OverrideAtTheReferencePositionsMatchesTransformers) {
    auto model = loadSd1();
    torch::NoGradGuard noGrad;
    auto& clip = dynamic_cast<CLIPTextModelImpl&>(*model.textEncoder);
    const auto& v = vectors();
    const auto e = loadTextualInversion(embeddingFile());
    checkEmbeddingFits(e, model.detected.text);
    const auto ids = v["ti.input_ids"];
    const auto o = referenceOverride(e);

    EXPECT_TENSOR_NEAR(clip.tokenEmbeds(ids, o), v["ti.token_embeds_f64"], parityTolerance(v["ti.token_embeds_f64"]));
    EXPECT_TENSOR_NEAR(clip.hiddenAfter(ids, 0, o), v["ti.embeddings_f64"], parityTolerance(v["ti.embeddings_f64"]));
    const auto last = clip.encodeWithOverride(ids, 1, o);
    EXPECT_TENSOR_NEAR(last.hidden, v["ti.last_hidden_state_f64"], parityTolerance(v["ti.last_hidden_state_f64"]));
    EXPECT_TENSOR_NEAR(last.pooled, v["ti.pooler_output_f64"], parityTolerance(v["ti.pooler_output_f64"]));
    EXPECT_TENSOR_NEAR(clip.encodeWithOverride(ids, 2, o).hidden, v["ti.penultimate_hidden_state_final_ln_f64"],
                       parityTolerance(v["ti.penultimate_hidden_state_final_ln_f64"]));

    // Without the embedding: the baseline, and the embedding really changes the output.
    const auto base = v["baseline.input_ids"];
    EXPECT_TENSOR_NEAR(clip.encode(base, 1).hidden, v["baseline.last_hidden_state_f64"],
                       parityTolerance(v["baseline.last_hidden_state_f64"]));
    EXPECT_TENSOR_NEAR(clip.encode(base, 2).hidden, v["baseline.penultimate_hidden_state_final_ln_f64"],
                       parityTolerance(v["baseline.penultimate_hidden_state_final_ln_f64"]));
    EXPECT_TENSOR_NEAR(clip.encodeWithOverride(base, 1, {}).hidden, v["baseline.last_hidden_state_f64"],
                       parityTolerance(v["baseline.last_hidden_state_f64"]));
    EXPECT_GT(maxAbsDiff(v["ti.last_hidden_state_f64"], v["baseline.last_hidden_state_f64"]),
              100 * parityTolerance(v["ti.last_hidden_state_f64"]));
}

TEST(Embedding, ThePromptTextGivesTheReferenceIdsAndOutput) {
    auto model = loadSd1();
    torch::NoGradGuard noGrad;
    const auto ti = tiSection();
    const auto& v = vectors();
    const auto e = loadTextualInversion(embeddingFile());
    const auto vocab = ReducedVocab::fromReference();
    // The reduced-vocabulary rule reproduces the stored baseline ids.
    ASSERT_TRUE(torch::equal(vocab.map(v["baseline.input_ids_real_vocab"]), v["baseline.input_ids"].to(torch::kLong)));

    EmbeddingTriggers triggers;
    triggers.add(tokenizer(), e.name, e.numVectors());
    const auto w = tokenizeWeighted(tokenizer(), ti.at("prompt").get<std::string>(), tokenizer().eosId(), &triggers);
    ASSERT_EQ(w.chunks.size(), 1u);
    const auto& chunk = w.chunks[0];
    const auto real = torch::tensor(std::vector<std::int64_t>(chunk.begin(), chunk.end()), torch::kLong).unsqueeze(0);
    const auto ids = vocab.map(real);
    EXPECT_TRUE(torch::equal(ids, v["ti.input_ids"].to(torch::kLong))) << ids;

    std::vector<std::int64_t> positions;
    std::vector<torch::Tensor> rows;
    for (const auto& slot : w.embeddings[0]) {
        positions.push_back(slot.position);
        rows.push_back(e.vectors[slot.vector]);
    }
    const TokenEmbeddingOverride o{torch::tensor(positions, torch::kLong), torch::stack(rows)};
    EXPECT_TRUE(torch::equal(o.positions, v["ti.embedding_positions"].reshape({-1}).to(torch::kLong)));
    EXPECT_TENSOR_NEAR(model.textEncoder->encodeWithOverride(ids, 1, o).hidden, v["ti.last_hidden_state_f64"],
                       parityTolerance(v["ti.last_hidden_state_f64"]));
    EXPECT_TENSOR_NEAR(model.textEncoder->encodeWithOverride(ids, 2, o).hidden,
                       v["ti.penultimate_hidden_state_final_ln_f64"],
                       parityTolerance(v["ti.penultimate_hidden_state_final_ln_f64"]));
}

TEST(Embedding, ConditionerAppliesTheEmbeddingToBothPrompts) {
    auto model = loadSd1WithRealVocab();
    torch::NoGradGuard noGrad;
    const auto& v = vectors();
    const std::string prompt = tiSection().at("prompt").get<std::string>();
    const auto e = loadTextualInversion(embeddingFile());
    const auto last = v["ti.last_hidden_state_f64"];
    const auto skip2 = v["ti.penultimate_hidden_state_final_ln_f64"];

    const Conditioner withTI(model, &tokenizer(), nullptr, torch::kCPU, {e});
    const auto c = withTI.encode(prompt, prompt, 1, 4);
    EXPECT_TENSOR_NEAR(c.cond, last, parityTolerance(last));
    EXPECT_TENSOR_NEAR(c.uncond, last, parityTolerance(last));
    EXPECT_TENSOR_NEAR(withTI.encode(prompt, "", 2, 4).cond, skip2, parityTolerance(skip2));

    // No embeddings: the trigger word is plain text again.
    const Conditioner plain(model, &tokenizer(), nullptr, torch::kCPU);
    const auto base = v["baseline.last_hidden_state_f64"];
    EXPECT_TENSOR_NEAR(plain.encode(prompt, "", 1, 4).cond, base, parityTolerance(base));
}

TEST(Embedding, EmphasisOnTheTriggerWeighsItsVectors) {
    auto model = loadSd1WithRealVocab();
    torch::NoGradGuard noGrad;
    const auto& v = vectors();
    const auto e = loadTextualInversion(embeddingFile());
    const std::string prompt = tiSection().at("prompt").get<std::string>();
    const std::string weighted = replaceAll(prompt, e.name, "(" + e.name + ":1.2)");
    ASSERT_NE(weighted, prompt);

    EmbeddingTriggers triggers;
    triggers.add(tokenizer(), e.name, e.numVectors());
    // Splitting the prompt into fragments leaves its tokens as they were.
    ASSERT_EQ(tokenizeWeighted(tokenizer(), weighted, tokenizer().eosId(), &triggers).chunks,
              tokenizeWeighted(tokenizer(), prompt, tokenizer().eosId(), &triggers).chunks);

    auto weights = torch::ones({v["ti.input_ids"].size(1)}, torch::kFloat64);
    weights.index_put_({v["ti.embedding_positions"].reshape({-1}).to(torch::kLong)}, 1.2);
    const auto expected = emphasised(v["ti.last_hidden_state_f64"], weights);
    const Conditioner conditioner(model, &tokenizer(), nullptr, torch::kCPU, {e});
    EXPECT_TENSOR_NEAR(conditioner.encode(weighted, "", 1, 4).cond, expected, parityTolerance(expected));
}

TEST(Embedding, ConditionerKeepsAnEmbeddingInOneChunk) {
    auto model = loadSd1WithRealVocab();
    torch::NoGradGuard noGrad;
    const auto e = loadTextualInversion(embeddingFile());
    const int before = kPromptChunkTokens - e.numVectors() + 1;
    std::string prompt;
    for (int i = 0; i < before; ++i) prompt += "a ";
    prompt += e.name;
    const Conditioner conditioner(model, &tokenizer(), nullptr, torch::kCPU, {e});
    const auto c = conditioner.encode(prompt, "", 1, 4);
    const auto hidden = model.detected.text.hiddenSize;
    EXPECT_EQ(c.cond.sizes(), torch::IntArrayRef({1, 2 * CLIPTokenizer::kContextLength, hidden}));
    EXPECT_EQ(c.uncond.sizes(), c.cond.sizes());

    // The second chunk is the embedding alone: the same as a prompt of just the trigger word.
    const auto alone = conditioner.encode(e.name, "", 1, 4).cond;
    const auto second = c.cond.narrow(1, CLIPTokenizer::kContextLength, CLIPTokenizer::kContextLength);
    EXPECT_TENSOR_NEAR(second, alone, 1e-6);
    // The first chunk does not contain it: the same as the filler alone.
    const auto first = c.cond.narrow(1, 0, CLIPTokenizer::kContextLength);
    EXPECT_TENSOR_NEAR(first, conditioner.encode(prompt.substr(0, 2 * before), "", 1, 4).cond, 1e-6);
}

TEST(Embedding, ReadsTheOtherLayouts) {
    TempDir dir;
    const auto ref = vectors()["ti.emb_params"].to(torch::kFloat32);
    const auto dim = ref.size(1);

    const auto a1111 = loadTextualInversion(writeTensors(dir, "a1111.safetensors", {{"string_to_param.*", ref}}));
    EXPECT_EQ(a1111.format, EmbeddingFormat::StringToParam);
    EXPECT_EQ(a1111.name, "a1111");
    EXPECT_TRUE(torch::equal(a1111.vectors, ref));

    const auto one = loadTextualInversion(writeTensors(dir, "concept.safetensors", {{"<cat-toy>", ref[0]}}));
    EXPECT_EQ(one.format, EmbeddingFormat::Diffusers);
    EXPECT_EQ(one.tensorKey, "<cat-toy>");
    EXPECT_EQ(one.name, "concept");
    EXPECT_EQ(one.vectors.sizes(), torch::IntArrayRef({1, dim}));

    const auto half =
        loadTextualInversion(writeTensors(dir, "half.safetensors", {{"learned", ref.to(torch::kFloat16)}}));
    EXPECT_EQ(half.vectors.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::allclose(half.vectors, ref, 1e-3, 1e-3));

    const auto xl = loadTextualInversion(
        writeTensors(dir, "xl.safetensors", {{"clip_g", torch::zeros({2, 1280})}, {"clip_l", torch::zeros({2, 768})}}));
    EXPECT_TRUE(xl.isSDXL());
    EXPECT_EQ(embeddingFormatName(xl.format), "sdxl");
    EXPECT_EQ(xl.numVectors(), 2);
    EXPECT_EQ(xl.clipG.size(1), 1280);
}

TEST(Embedding, RefusesWhatItCannotUse) {
    TempDir dir;
    const auto ref = vectors()["ti.emb_params"].to(torch::kFloat32);

    auto message = embeddingErrorOf([&] { loadTextualInversion(dir.write("style.pt", "PK\x03\x04 not loaded")); });
    EXPECT_NE(message.find("pickle"), std::string::npos) << message;
    EXPECT_NE(message.find("style.pt"), std::string::npos) << message;
    message = embeddingErrorOf([&] { loadTextualInversion(dir.write("style.bin", "x")); });
    EXPECT_NE(message.find("pickle"), std::string::npos) << message;
    message = embeddingErrorOf([&] { loadTextualInversion(dir.write("zip.safetensors", "PK\x03\x04 torch.save")); });
    EXPECT_NE(message.find("pickle"), std::string::npos) << message;
    message = embeddingErrorOf([&] { loadTextualInversion(dir / "absent.safetensors"); });
    EXPECT_NE(message.find("absent.safetensors"), std::string::npos) << message;

    message = embeddingErrorOf([&] {
        loadTextualInversion(writeTensors(dir, "two.safetensors", {{"first", ref}, {"second", ref}}));
    });
    EXPECT_NE(message.find("known layout"), std::string::npos) << message;
    EXPECT_NE(message.find("first"), std::string::npos) << message;
    message = embeddingErrorOf([&] {
        loadTextualInversion(writeTensors(dir, "cube.safetensors", {{"emb_params", ref.unsqueeze(0)}}));
    });
    EXPECT_NE(message.find("[n, dim]"), std::string::npos) << message;
    message = embeddingErrorOf([&] {
        loadTextualInversion(
            writeTensors(dir, "ints.safetensors", {{"emb_params", torch::ones({2, 4}, torch::kLong)}}));
    });
    EXPECT_NE(message.find("float"), std::string::npos) << message;
    auto bad = ref.clone();
    bad[0][0] = std::numeric_limits<float>::quiet_NaN();
    message = embeddingErrorOf([&] {
        loadTextualInversion(writeTensors(dir, "nan.safetensors", {{"emb_params", bad}}));
    });
    EXPECT_NE(message.find("NaN"), std::string::npos) << message;
}

TEST(Embedding, RefusesEmbeddingsForAnotherModel) {
    auto model = loadSd1();
    TempDir dir;
    const int hidden = model.detected.text.hiddenSize;
    const auto wide =
        loadTextualInversion(writeTensors(dir, "wide.safetensors", {{"emb_params", torch::ones({2, 768})}}));
    auto message = embeddingErrorOf([&] { checkEmbeddingFits(wide, model.detected.text); });
    EXPECT_NE(message.find("768"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(hidden)), std::string::npos) << message;
    EXPECT_NE(message.find("wide"), std::string::npos) << message;
    message = embeddingErrorOf([&] { (void)Conditioner(model, &tokenizer(), nullptr, torch::kCPU, {wide}); });
    EXPECT_NE(message.find("768"), std::string::npos) << message;

    const auto xl = loadTextualInversion(writeTensors(
        dir, "xl.safetensors", {{"clip_g", torch::zeros({1, 1280})}, {"clip_l", torch::zeros({1, hidden})}}));
    message = embeddingErrorOf([&] { checkEmbeddingFits(xl, model.detected.text); });
    EXPECT_NE(message.find("SDXL"), std::string::npos) << message;

    // Two embeddings under one trigger word, and a model without a CLIP tokenizer.
    const auto e = loadTextualInversion(embeddingFile());
    message = embeddingErrorOf([&] { (void)Conditioner(model, &tokenizer(), nullptr, torch::kCPU, {e, e}); });
    EXPECT_NE(message.find(e.name), std::string::npos) << message;
    message = embeddingErrorOf([&] { (void)Conditioner(model, nullptr, nullptr, torch::kCPU, {e}); });
    EXPECT_NE(message.find("CLIP tokenizer"), std::string::npos) << message;
}

TEST(Embedding, OpenCLIPEncoderTakesTheOverrideToo) {
    const auto cfg = easel::testing::referenceConfig();
    const auto& s = cfg["sd2"];
    auto model = loadSingleFileCheckpoint(easel::testing::referenceFile(s["checkpoint"]["file"].get<std::string>()),
                                          easel::testing::overridesFor(s, s["text_encoder"]));
    torch::NoGradGuard noGrad;
    auto& clip = dynamic_cast<OpenCLIPTextModelImpl&>(*model.textEncoder);
    ReferenceVectors v("sd2_text_encoder_vectors.safetensors");
    const auto ids = v["input_ids"].narrow(0, 0, 1).to(torch::kLong);
    // Putting a token's own rows back changes nothing; other rows change the output.
    const auto positions = torch::tensor({1, 2}, torch::kLong);
    const auto own = clip.token_embedding->weight.index_select(0, ids[0].index_select(0, positions));
    const auto plain = clip.encode(ids, 1).hidden;
    EXPECT_TRUE(torch::equal(clip.encodeWithOverride(ids, 1, {positions, own}).hidden, plain));
    const auto other = clip.encodeWithOverride(ids, 1, {positions, own.flip(0) + 0.5}).hidden;
    EXPECT_GT(maxAbsDiff(other, plain), 1e-3);
    EXPECT_TRUE(torch::equal(other.narrow(1, 0, 1), plain.narrow(1, 0, 1)));  // causal: BOS sees only itself
    EXPECT_THROW(clip.encodeWithOverride(ids, 1, {positions, own.narrow(1, 0, 4)}), std::invalid_argument);
    EXPECT_THROW(clip.encodeWithOverride(ids, 1, {torch::tensor({ids.size(1)}, torch::kLong), own.narrow(0, 0, 1)}),
                 std::invalid_argument);
}
