#include "inference/tokenizer/prompt_parser.h"

#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "reference_dir.h"

using easel::inference::CLIPTokenizer;
using easel::inference::parsePromptAttention;
using easel::inference::PromptFragment;
using easel::inference::tokenizeWeighted;

namespace {

constexpr float kSquare = static_cast<float>(1 / 1.1);

std::string describe(const std::vector<PromptFragment>& fragments) {
    std::ostringstream out;
    for (const auto& f : fragments)
        out << (f.isBreak ? "[BREAK]" : "['" + f.text + "', " + std::to_string(f.weight) + "]");
    return out.str();
}

void expectFragments(std::string_view prompt, const std::vector<PromptFragment>& expected) {
    SCOPED_TRACE(std::string("prompt: ") + std::string(prompt));
    const auto actual = parsePromptAttention(prompt);
    ASSERT_EQ(actual.size(), expected.size()) << describe(actual);
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(actual[i].text, expected[i].text) << "fragment " << i;
        EXPECT_FLOAT_EQ(actual[i].weight, expected[i].weight) << "fragment " << i;
        EXPECT_EQ(actual[i].isBreak, expected[i].isBreak) << "fragment " << i;
    }
}

const PromptFragment kBreak{"", 1.0f, true};

TEST(ParsePromptAttention, PlainText) { expectFragments("a photo of a cat", {{"a photo of a cat", 1.0f}}); }

TEST(ParsePromptAttention, EmptyPrompt) { expectFragments("", {{"", 1.0f}}); }

TEST(ParsePromptAttention, RoundBracketsMultiply) {
    expectFragments("(a)", {{"a", 1.1f}});
    expectFragments("((a))", {{"a", 1.21f}});
    expectFragments("an (important) word", {{"an ", 1.0f}, {"important", 1.1f}, {" word", 1.0f}});
}

TEST(ParsePromptAttention, SquareBracketsDivide) {
    expectFragments("[a]", {{"a", kSquare}});
    expectFragments("[[a]]", {{"a", kSquare * kSquare}});
}

TEST(ParsePromptAttention, ExplicitWeights) {
    expectFragments("(a:1.3)", {{"a", 1.3f}});
    expectFragments("(a:0.5) b", {{"a", 0.5f}, {" b", 1.0f}});
    expectFragments("((a:1.5))", {{"a", 1.65f}});
    expectFragments("(a: 1.3 )", {{"a", 1.3f}});
    expectFragments("(a:-1)", {{"a", -1.0f}});
    expectFragments("(a:+.5)", {{"a", 0.5f}});
}

TEST(ParsePromptAttention, A1111DocstringExample) {
    expectFragments("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", {{"a ", 1.0f},
                                                                            {"house", 1.573f},
                                                                            {" ", 1.1f},
                                                                            {"on", 1.0f},
                                                                            {" a ", 1.1f},
                                                                            {"hill", 0.55f},
                                                                            {", sun, ", 1.1f},
                                                                            {"sky", 1.4641f},
                                                                            {".", 1.1f}});
}

TEST(ParsePromptAttention, AdjacentEqualWeightsMerge) {
    expectFragments("(unnecessary)(parens)", {{"unnecessaryparens", 1.1f}});
}

TEST(ParsePromptAttention, Escapes) {
    expectFragments(R"(\(literal\])", {{"(literal]", 1.0f}});
    expectFragments(R"(a \\ b)", {{R"(a \ b)", 1.0f}});
    expectFragments(R"(\(a\) (b))", {{"(a) ", 1.0f}, {"b", 1.1f}});
    expectFragments(R"((\[x\]))", {{"[x]", 1.1f}});
    // A backslash before anything else is dropped, as A1111 does.
    expectFragments(R"(a\b)", {{"ab", 1.0f}});
}

TEST(ParsePromptAttention, UnbalancedBrackets) {
    expectFragments("(a", {{"a", 1.1f}});
    expectFragments("[a", {{"a", kSquare}});
    expectFragments("((a) b", {{"a", 1.21f}, {" b", 1.1f}});
    expectFragments("a) b]", {{"a) b]", 1.0f}});
}

TEST(ParsePromptAttention, ColonsOutsideWeights) {
    expectFragments("16:9 ratio", {{"16:9 ratio", 1.0f}});
    expectFragments("a:1.5) b", {{"a:1.5) b", 1.0f}});
    expectFragments("(a:1.2.3)", {{"a:1.2.3", 1.1f}});
}

TEST(ParsePromptAttention, Break) {
    expectFragments("a BREAK b", {{"a", 1.0f}, kBreak, {"b", 1.0f}});
    expectFragments("(a BREAK b)", {{"a", 1.1f}, kBreak, {"b", 1.1f}});
    expectFragments("BREAKfast a_BREAK", {{"BREAKfast a_BREAK", 1.0f}});
    expectFragments("BREAK", {kBreak});
}

class TokenizeWeightedTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_tokenizer = std::make_unique<CLIPTokenizer>(
            CLIPTokenizer::fromBpeGz(easel::testing::referenceFile("bpe_simple_vocab_16e6.txt.gz")));
    }
    static void TearDownTestSuite() { s_tokenizer.reset(); }
    static const CLIPTokenizer& tokenizer() { return *s_tokenizer; }

    // The id of a word that is a single token.
    static int idOf(const std::string& word) {
        const auto ids = tokenizer().encode(word);
        EXPECT_EQ(ids.size(), 1U) << word;
        return ids.empty() ? -1 : ids.front();
    }

    static std::string repeat(const std::string& word, int times) {
        std::string out;
        for (int i = 0; i < times; ++i) out += word + " ";
        return out;
    }

private:
    static inline std::unique_ptr<CLIPTokenizer> s_tokenizer;
};

TEST_F(TokenizeWeightedTest, EmptyPromptIsOneChunkOfBosEosAndPadding) {
    const auto prompt = tokenizeWeighted(tokenizer(), "", 0);
    ASSERT_EQ(prompt.chunks.size(), 1U);
    EXPECT_EQ(prompt.chunks[0], tokenizer().padToContext({}, 0));
    EXPECT_EQ(prompt.weights[0], std::vector<float>(77, 1.0f));
}

TEST_F(TokenizeWeightedTest, LongPromptIsChunkedWithAlignedWeights) {
    const int bos = tokenizer().bosId();
    const int eos = tokenizer().eosId();
    const int red = idOf("red");
    const int cat = idOf("cat");
    const int comma = idOf(",");
    const int dog = idOf("dog");
    const int blue = idOf("blue");

    // 3 + 80 + 1 = 84 tokens: 75 in the first chunk, 9 in the second.
    const auto prompt = tokenizeWeighted(tokenizer(), "(red:1.5) cat, " + repeat("dog", 80) + "[blue]", 49407);
    ASSERT_EQ(prompt.chunks.size(), 2U);
    ASSERT_EQ(prompt.weights.size(), 2U);
    for (std::size_t c = 0; c < 2; ++c) {
        ASSERT_EQ(prompt.chunks[c].size(), 77U);
        ASSERT_EQ(prompt.weights[c].size(), 77U);
        EXPECT_EQ(prompt.chunks[c].front(), bos);
        EXPECT_FLOAT_EQ(prompt.weights[c].front(), 1.0f);
    }

    const auto& first = prompt.chunks[0];
    const auto& firstWeights = prompt.weights[0];
    EXPECT_EQ(first[1], red);
    EXPECT_FLOAT_EQ(firstWeights[1], 1.5f);
    EXPECT_EQ(first[2], cat);
    EXPECT_EQ(first[3], comma);
    for (int i = 4; i <= 75; ++i) {
        EXPECT_EQ(first[i], dog) << i;
        EXPECT_FLOAT_EQ(firstWeights[i], 1.0f) << i;
    }
    EXPECT_EQ(first[76], eos);

    const auto& second = prompt.chunks[1];
    const auto& secondWeights = prompt.weights[1];
    for (int i = 1; i <= 8; ++i) EXPECT_EQ(second[i], dog) << i;
    EXPECT_EQ(second[9], blue);
    EXPECT_FLOAT_EQ(secondWeights[9], kSquare);
    EXPECT_EQ(second[10], eos);
    for (int i = 11; i < 77; ++i) {
        EXPECT_EQ(second[i], 49407) << i;
        EXPECT_FLOAT_EQ(secondWeights[i], 1.0f) << i;
    }
}

TEST_F(TokenizeWeightedTest, ChunkBoundaryAt75Tokens) {
    EXPECT_EQ(tokenizeWeighted(tokenizer(), repeat("cat", 75), 0).chunks.size(), 1U);
    const auto longer = tokenizeWeighted(tokenizer(), repeat("cat", 76), 0);
    ASSERT_EQ(longer.chunks.size(), 2U);
    EXPECT_EQ(longer.chunks[1], tokenizer().padToContext({idOf("cat")}, 0));
}

TEST_F(TokenizeWeightedTest, BreakStartsANewChunk) {
    const auto prompt = tokenizeWeighted(tokenizer(), "a cat BREAK (a dog)", 0);
    ASSERT_EQ(prompt.chunks.size(), 2U);
    EXPECT_EQ(prompt.chunks[0], tokenizer().padToContext(tokenizer().encode("a cat"), 0));
    EXPECT_EQ(prompt.chunks[1], tokenizer().padToContext(tokenizer().encode("a dog"), 0));
    EXPECT_FLOAT_EQ(prompt.weights[1][1], 1.1f);
    EXPECT_FLOAT_EQ(prompt.weights[1][2], 1.1f);
    EXPECT_FLOAT_EQ(prompt.weights[1][3], 1.0f);
    // A trailing BREAK adds no empty chunk.
    EXPECT_EQ(tokenizeWeighted(tokenizer(), "a cat BREAK", 0).chunks.size(), 1U);
}

}  // namespace
