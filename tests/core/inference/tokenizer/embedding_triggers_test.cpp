// Textual-inversion trigger words in the tokenizer layer: the A1111 layout of the shared adapter reference
// (adapters/adapter_reference.json, "textual_inversion"), emphasis, several embeddings, and chunk
// boundaries. Every setting (trigger word, prompt, vector count, positions) is read from the JSON.

#include "inference/tokenizer/embedding_triggers.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "inference/tokenizer/prompt_parser.h"
#include "reference_dir.h"

using namespace easel::inference;

namespace {

const CLIPTokenizer& tokenizer() {
    static const CLIPTokenizer t =
        CLIPTokenizer::fromBpeGz(easel::testing::referenceFile("bpe_simple_vocab_16e6.txt.gz"));
    return t;
}

nlohmann::json textualInversion() {
    std::ifstream in(easel::testing::referenceFile("adapters/adapter_reference.json"));
    return nlohmann::json::parse(in).at("textual_inversion");
}

std::string repeated(const std::string& word, int times) {
    std::string s;
    for (int i = 0; i < times; ++i) s += (i == 0 ? "" : " ") + word;
    return s;
}

// "a" is one BPE token, so n copies give n tokens.
std::string filler(int tokens) {
    EXPECT_EQ(tokenizer().encode("a a").size(), 2u);
    return repeated("a", tokens);
}

}  // namespace

TEST(EmbeddingTriggers, TriggerWordIsItsBpeIds) {
    const auto ti = textualInversion();
    EmbeddingTriggers triggers;
    const int index =
        triggers.add(tokenizer(), ti.at("trigger_word").get<std::string>(), ti.at("n_vectors").get<int>());
    EXPECT_EQ(index, 0);
    EXPECT_EQ(triggers.triggers()[0].ids, ti.at("trigger_bpe_ids").get<std::vector<int>>());
}

TEST(EmbeddingTriggers, ReferencePromptGetsTheA1111Layout) {
    const auto ti = textualInversion();
    const int n = ti.at("n_vectors").get<int>();
    EmbeddingTriggers triggers;
    triggers.add(tokenizer(), ti.at("trigger_word").get<std::string>(), n);
    const auto w = tokenizeWeighted(tokenizer(), ti.at("prompt").get<std::string>(), tokenizer().eosId(), &triggers);
    ASSERT_EQ(w.chunks.size(), 1u);
    ASSERT_EQ(w.embeddings.size(), 1u);

    const auto positions = ti.at("embedding_positions").get<std::vector<int>>();
    const auto vectorIndex = ti.at("embedding_vector_index").get<std::vector<int>>();
    ASSERT_EQ(w.embeddings[0].size(), positions.size());
    for (std::size_t k = 0; k < positions.size(); ++k) {
        EXPECT_EQ(w.embeddings[0][k].position, positions[k]) << k;
        EXPECT_EQ(w.embeddings[0][k].vector, vectorIndex[k]) << k;
        EXPECT_EQ(w.embeddings[0][k].trigger, 0);
    }
    // Real ids everywhere else; the placeholder where the reference has the grown-vocabulary ids.
    auto expected = ti.at("input_ids_real_vocab").get<std::vector<int>>();
    for (const int p : positions) expected[static_cast<std::size_t>(p)] = kEmbeddingPlaceholderId;
    EXPECT_EQ(w.chunks[0], expected);
    EXPECT_EQ(w.chunks[0][static_cast<std::size_t>(ti.at("eos_position").get<int>())], tokenizer().eosId());
}

TEST(EmbeddingTriggers, WithoutTriggersTheWordStaysText) {
    const auto ti = textualInversion();
    const auto w = tokenizeWeighted(tokenizer(), ti.at("prompt").get<std::string>(), tokenizer().eosId());
    ASSERT_EQ(w.embeddings.size(), 1u);
    EXPECT_TRUE(w.embeddings[0].empty());
    std::vector<int> expected{tokenizer().bosId()};
    for (const int id : ti.at("prompt_bpe_ids").get<std::vector<int>>()) expected.push_back(id);
    expected.push_back(tokenizer().eosId());
    expected.resize(CLIPTokenizer::kContextLength, tokenizer().eosId());
    EXPECT_EQ(w.chunks[0], expected);
}

TEST(EmbeddingTriggers, EmphasisWeighsTheEmbeddingPositions) {
    const auto ti = textualInversion();
    const std::string trigger = ti.at("trigger_word").get<std::string>();
    EmbeddingTriggers triggers;
    triggers.add(tokenizer(), trigger, ti.at("n_vectors").get<int>());
    const auto w = tokenizeWeighted(tokenizer(), "a photo of (" + trigger + ":1.2), [" + trigger + "] and " + trigger,
                                    tokenizer().eosId(), &triggers);
    ASSERT_EQ(w.chunks.size(), 1u);
    const int n = ti.at("n_vectors").get<int>();
    ASSERT_EQ(w.embeddings[0].size(), static_cast<std::size_t>(3 * n));
    for (int k = 0; k < 3 * n; ++k) {
        const auto& slot = w.embeddings[0][static_cast<std::size_t>(k)];
        const float expected = k < n ? 1.2f : (k < 2 * n ? static_cast<float>(1 / 1.1) : 1.0f);
        EXPECT_FLOAT_EQ(w.weights[0][static_cast<std::size_t>(slot.position)], expected) << k;
        EXPECT_EQ(w.chunks[0][static_cast<std::size_t>(slot.position)], kEmbeddingPlaceholderId);
        EXPECT_EQ(slot.vector, k % n);
    }
    // "a photo of" comes first, so the first embedding starts at 4; then ",", then the second one.
    EXPECT_EQ(w.embeddings[0][0].position, 4);
    EXPECT_EQ(w.embeddings[0][static_cast<std::size_t>(n)].position, 4 + n + 1);
}

TEST(EmbeddingTriggers, AnEmbeddingIsMovedWholeToTheNextChunk) {
    const auto ti = textualInversion();
    const std::string trigger = ti.at("trigger_word").get<std::string>();
    const int n = ti.at("n_vectors").get<int>();
    EmbeddingTriggers triggers;
    triggers.add(tokenizer(), trigger, n);
    // Room for n - 1 more tokens: the embedding would straddle the boundary, so it starts chunk 2.
    const int before = kPromptChunkTokens - n + 1;
    const auto w = tokenizeWeighted(tokenizer(), filler(before) + " " + trigger + " b", tokenizer().eosId(), &triggers);
    ASSERT_EQ(w.chunks.size(), 2u);
    EXPECT_TRUE(w.embeddings[0].empty());
    EXPECT_EQ(w.chunks[0][static_cast<std::size_t>(before) + 1], tokenizer().eosId());
    ASSERT_EQ(w.embeddings[1].size(), static_cast<std::size_t>(n));
    for (int v = 0; v < n; ++v) {
        EXPECT_EQ(w.embeddings[1][static_cast<std::size_t>(v)].position, 1 + v);
        EXPECT_EQ(w.embeddings[1][static_cast<std::size_t>(v)].vector, v);
    }
    EXPECT_EQ(w.chunks[1][static_cast<std::size_t>(n) + 1], tokenizer().encode("b")[0]);

    // Exactly filling the chunk keeps it in the first one.
    const auto fits = tokenizeWeighted(tokenizer(), filler(before - 1) + " " + trigger, tokenizer().eosId(), &triggers);
    ASSERT_EQ(fits.chunks.size(), 1u);
    ASSERT_EQ(fits.embeddings[0].size(), static_cast<std::size_t>(n));
    EXPECT_EQ(fits.embeddings[0].back().position, kPromptChunkTokens);
}

TEST(EmbeddingTriggers, AnEmbeddingLongerThanAChunkIsSplit) {
    EmbeddingTriggers triggers;
    triggers.add(tokenizer(), "hugeconcept", kPromptChunkTokens + 5);
    const auto w = tokenizeWeighted(tokenizer(), "a hugeconcept", tokenizer().eosId(), &triggers);
    ASSERT_EQ(w.chunks.size(), 2u);
    ASSERT_EQ(w.embeddings[0].size(), static_cast<std::size_t>(kPromptChunkTokens - 1));
    ASSERT_EQ(w.embeddings[1].size(), 6u);
    EXPECT_EQ(w.embeddings[0].front().position, 2);
    EXPECT_EQ(w.embeddings[1].front().vector, kPromptChunkTokens - 1);
    EXPECT_EQ(w.embeddings[1].back().vector, kPromptChunkTokens + 4);
    EXPECT_EQ(w.embeddings[1].back().position, 6);
}

TEST(EmbeddingTriggers, SeveralEmbeddingsAndTheLongestMatchWins) {
    const auto ti = textualInversion();
    const std::string trigger = ti.at("trigger_word").get<std::string>();
    const int n = ti.at("n_vectors").get<int>();
    EmbeddingTriggers triggers;
    triggers.add(tokenizer(), trigger, n);
    const int cat = triggers.add(tokenizer(), "cat", 1);
    const int catDog = triggers.add(tokenizer(), "cat dog", 3);
    const auto w = tokenizeWeighted(tokenizer(), "cat dog, " + trigger + " and a cat", tokenizer().eosId(), &triggers);
    ASSERT_EQ(w.chunks.size(), 1u);
    const auto& slots = w.embeddings[0];
    ASSERT_EQ(slots.size(), static_cast<std::size_t>(3 + n + 1));
    for (int v = 0; v < 3; ++v) {
        EXPECT_EQ(slots[static_cast<std::size_t>(v)].trigger, catDog);
        EXPECT_EQ(slots[static_cast<std::size_t>(v)].position, 1 + v);
    }
    EXPECT_EQ(slots[3].trigger, 0);
    EXPECT_EQ(slots[3].position, 5);  // after the three vectors and ","
    EXPECT_EQ(slots.back().trigger, cat);
    EXPECT_EQ(slots.back().position, 5 + n + 2);  // after "and a"
}

TEST(EmbeddingTriggers, RefusesAmbiguousOrEmptyTriggers) {
    EmbeddingTriggers triggers;
    triggers.add(tokenizer(), "tinyword", 1);
    EXPECT_THROW(triggers.add(tokenizer(), "tinyword", 2), std::invalid_argument);
    EXPECT_THROW(triggers.add(tokenizer(), "TinyWord", 2), std::invalid_argument);  // same ids after lowercasing
    EXPECT_THROW(triggers.add(tokenizer(), "   ", 1), std::invalid_argument);
    EXPECT_THROW(triggers.add(tokenizer(), "other", 0), std::invalid_argument);
    EXPECT_EQ(triggers.triggers().size(), 1u);
}
