#include "inference/tokenizer/clip_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "reference_dir.h"
#include "temp_dir.h"

using easel::inference::CLIPTokenizer;
using easel::inference::TokenizerError;
using easel::testing::TempDir;

namespace {

std::filesystem::path vocabGz() { return easel::testing::referenceFile("bpe_simple_vocab_16e6.txt.gz"); }

nlohmann::json loadReference() {
    std::ifstream in(easel::testing::referenceFile("tokenizer_reference.json"));
    if (!in) throw std::runtime_error("tokenizer_reference.json not found in the reference folder");
    return nlohmann::json::parse(in);
}

std::string readBytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `load` and expects a TokenizerError whose message contains `fragment` (typically the file name).
template <typename Load>
void expectTokenizerError(Load load, const std::string& fragment) {
    try {
        (void)load();
        FAIL() << "loaded a bad vocabulary; expected an error containing '" << fragment << "'";
    } catch (const TokenizerError& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

class CLIPTokenizerTest : public ::testing::Test {
protected:
    // Parsing the 49k merges once keeps the suite fast.
    static void SetUpTestSuite() { s_tokenizer = std::make_unique<CLIPTokenizer>(CLIPTokenizer::fromBpeGz(vocabGz())); }
    static void TearDownTestSuite() { s_tokenizer.reset(); }
    static const CLIPTokenizer& tokenizer() { return *s_tokenizer; }

private:
    static inline std::unique_ptr<CLIPTokenizer> s_tokenizer;
};

TEST_F(CLIPTokenizerTest, SpecialIdsMatchReference) {
    const auto reference = loadReference();
    EXPECT_EQ(tokenizer().bosId(), reference.at("bos_token_id").get<int>());
    EXPECT_EQ(tokenizer().eosId(), reference.at("eos_token_id").get<int>());
    EXPECT_EQ(tokenizer().vocabSize(), 49408);
}

TEST_F(CLIPTokenizerTest, EveryReferencePromptMatches) {
    const auto reference = loadReference();
    const auto& prompts = reference.at("prompts");
    ASSERT_FALSE(prompts.empty());
    const int maxLength = reference.at("max_length").get<int>();
    const int padSd15 = reference.at("pad_token_id_sd15").get<int>();
    const int padSd2 = reference.at("pad_token_id_sd2").get<int>();
    // The prompts whose ids ftfy changes are held to the ftfy ids too, not to bpe_ids_without_ftfy.
    int ftfyPrompts = 0;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        const auto& prompt = prompts[i];
        if (prompt.value("ftfy_changes_ids", false)) ++ftfyPrompts;
        const auto text = prompt.at("text").get<std::string>();
        SCOPED_TRACE("prompt " + std::to_string(i) + ": " + text + "  (cleaned: " + CLIPTokenizer::cleanText(text) +
                     ")");
        const auto ids = tokenizer().encode(text);
        EXPECT_EQ(ids, prompt.at("bpe_ids").get<std::vector<int>>());
        EXPECT_EQ(static_cast<int>(ids.size()), prompt.at("num_bpe_tokens").get<int>());
        EXPECT_EQ(tokenizer().padToContext(ids, padSd15, maxLength), prompt.at("input_ids").get<std::vector<int>>());
        EXPECT_EQ(tokenizer().padToContext(ids, padSd2, maxLength),
                  prompt.at("input_ids_pad0").get<std::vector<int>>());
    }
    EXPECT_GT(ftfyPrompts, 0);
}

TEST_F(CLIPTokenizerTest, RepeatedEncodeUsesCacheConsistently) {
    const auto first = tokenizer().encode("a photograph of an astronaut riding a horse");
    EXPECT_EQ(tokenizer().encode("a photograph of an astronaut riding a horse"), first);
}

TEST_F(CLIPTokenizerTest, PadToContextTruncatesAndPads) {
    const std::vector<int> many(100, 320);
    const auto padded = tokenizer().padToContext(many, 0);
    ASSERT_EQ(padded.size(), 77U);
    EXPECT_EQ(padded.front(), 49406);
    EXPECT_EQ(padded.back(), 49407);
    EXPECT_EQ(padded[75], 320);

    const auto shortOne = tokenizer().padToContext({320}, 0, 5);
    EXPECT_EQ(shortOne, (std::vector<int>{49406, 320, 49407, 0, 0}));
    EXPECT_THROW((void)tokenizer().padToContext({}, 0, 1), std::invalid_argument);
}

TEST(CLIPTokenizerCleanText, FollowsPythonHtmlUnescape) {
    // ftfy decodes "&amp;amp;amp;" fully (it repeats until nothing changes), html.unescape handles the rest.
    EXPECT_EQ(CLIPTokenizer::cleanText("A &amp;amp;amp; B"), "a & b");
    EXPECT_EQ(CLIPTokenizer::cleanText("&#128;&#x41;&#0;"),
              "\u20ac"
              "a\ufffd");
    // Legacy names decode without ';' and as a prefix; unknown names stay.
    EXPECT_EQ(CLIPTokenizer::cleanText("&ampx &copy2 &bogus;"), "&x \u00a92 &bogus;");
    // A line with '<' turns ftfy's entity decoding off, but html.unescape still runs twice.
    EXPECT_EQ(CLIPTokenizer::cleanText("<b> &amp;amp;amp;"), "<b> &amp;");
}

TEST(CLIPTokenizerCleanText, AppliesFtfyFixes) {
    EXPECT_EQ(CLIPTokenizer::cleanText("\u201cHi\u201d \u2018x\u2019"), "\"hi\" 'x'");
    EXPECT_EQ(CLIPTokenizer::cleanText("\uff21\uff22\u3000\uff43"), "ab c");
    EXPECT_EQ(CLIPTokenizer::cleanText("\ufb03x"), "ffix");
    EXPECT_EQ(CLIPTokenizer::cleanText("Caf\u00c3\u00a9"), "caf\u00e9");
    EXPECT_EQ(CLIPTokenizer::cleanText("e\u0301"), "\u00e9");
    EXPECT_EQ(CLIPTokenizer::cleanText("\x1b[31mred\x1b[0m"), "red");
    // Real Latin-1 text is not "repaired".
    EXPECT_EQ(CLIPTokenizer::cleanText("Cr\u00e8me Br\u00fbl\u00e9e"), "cr\u00e8me br\u00fbl\u00e9e");
    // Invalid UTF-8 reads as U+FFFD instead of failing.
    EXPECT_EQ(CLIPTokenizer::cleanText("a\xff"), "a\ufffd");
}

TEST(CLIPTokenizerLoad, MissingGzNamesTheFile) {
    TempDir dir;
    expectTokenizerError([&] { return CLIPTokenizer::fromBpeGz(dir / "nope.txt.gz"); }, "nope.txt.gz");
}

TEST(CLIPTokenizerLoad, CorruptGzIsRejected) {
    TempDir dir;
    const auto garbage = dir.write(
        "garbage.gz", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) + "this is not deflate data at all");
    expectTokenizerError([&] { return CLIPTokenizer::fromBpeGz(garbage); }, "garbage.gz");

    const std::string real = readBytes(vocabGz());
    ASSERT_GT(real.size(), 10000U);
    const auto truncated = dir.write("truncated.gz", std::string_view(real).substr(0, real.size() / 2));
    expectTokenizerError([&] { return CLIPTokenizer::fromBpeGz(truncated); }, "truncated.gz");

    // zlib reads an uncompressed file as is; the content check still refuses it.
    const auto plain = dir.write("plain.gz", "#version: 0.2\na b\n");
    expectTokenizerError([&] { return CLIPTokenizer::fromBpeGz(plain); }, "plain.gz");
}

TEST(CLIPTokenizerLoad, VocabAndMergesRoundTrip) {
    TempDir dir;
    const auto vocab = dir.write("vocab.json", R"({"a": 0, "c": 1, "t": 2, "a</w>": 3, "c</w>": 4, "t</w>": 5,
        "ca": 6, "cat</w>": 7, ",</w>": 8, "<|startoftext|>": 9, "<|endoftext|>": 10})");
    const auto merges = dir.write("merges.txt", "#version: 0.2\nc a\nca t</w>\n");
    const auto tokenizer = CLIPTokenizer::fromVocabAndMerges(vocab, merges);
    EXPECT_EQ(tokenizer.bosId(), 9);
    EXPECT_EQ(tokenizer.eosId(), 10);
    EXPECT_EQ(tokenizer.encode("CAT, act a"), (std::vector<int>{7, 8, 0, 1, 5, 3}));
    EXPECT_EQ(tokenizer.encode("<|startoftext|>cat<|endoftext|>"), (std::vector<int>{9, 7, 10}));
    // Symbols the vocabulary lacks become the unknown token, <|endoftext|>.
    EXPECT_EQ(tokenizer.encode("q"), (std::vector<int>{10}));
    EXPECT_EQ(tokenizer.padToContext(tokenizer.encode("cat"), 0, 5), (std::vector<int>{9, 7, 10, 0, 0}));
}

TEST(CLIPTokenizerLoad, BadVocabOrMergesNamesTheFile) {
    TempDir dir;
    const auto goodVocab = dir.write("vocab.json", R"({"<|startoftext|>": 0, "<|endoftext|>": 1})");
    const auto goodMerges = dir.write("merges.txt", "#version: 0.2\n");
    EXPECT_NO_THROW((void)CLIPTokenizer::fromVocabAndMerges(goodVocab, goodMerges));

    expectTokenizerError([&] { return CLIPTokenizer::fromVocabAndMerges(dir / "missing.json", goodMerges); },
                         "missing.json");
    expectTokenizerError([&] { return CLIPTokenizer::fromVocabAndMerges(goodVocab, dir / "missing.txt"); },
                         "missing.txt");
    const auto notJson = dir.write("broken.json", "{\"a\": 0,");
    expectTokenizerError([&] { return CLIPTokenizer::fromVocabAndMerges(notJson, goodMerges); }, "broken.json");
    const auto badId = dir.write("badid.json", R"({"a": "zero"})");
    expectTokenizerError([&] { return CLIPTokenizer::fromVocabAndMerges(badId, goodMerges); }, "badid.json");
    const auto noSpecials = dir.write("nospecial.json", R"({"a": 0})");
    expectTokenizerError([&] { return CLIPTokenizer::fromVocabAndMerges(noSpecials, goodMerges); }, "nospecial.json");
    const auto badMerges = dir.write("badmerges.txt", "#version: 0.2\na b\nabc\n");
    expectTokenizerError([&] { return CLIPTokenizer::fromVocabAndMerges(goodVocab, badMerges); }, "badmerges.txt");
}

}  // namespace
