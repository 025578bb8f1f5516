#include "inference/tokenizer/word_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.h"

using easel::inference::WordTokenizer;

TEST(WordTokenizer, EncodesLowercasedWordsWithUnknowns) {
    const auto t = WordTokenizer::fromWords({"a", "red", "circle", "red"});
    EXPECT_EQ(t.vocabSize(), 6);
    EXPECT_EQ(t.encode("A RED, circle!"), (std::vector<int>{3, 4, 5}));
    EXPECT_EQ(t.encode("a blue circle"), (std::vector<int>{3, t.unkId(), 5}));
    const auto padded = t.encodePadded("a red", 6);
    EXPECT_EQ(padded, (std::vector<int>{t.bosId(), 3, 4, t.eosId(), t.eosId(), t.eosId()}));
    EXPECT_EQ(t.encodePadded("a a a a a a a", 4), (std::vector<int>{0, 3, 3, 1}));
    EXPECT_EQ(t.encodePadded("", 3), (std::vector<int>{0, 1, 1}));
}

TEST(WordTokenizer, SavesAndLoads) {
    easel::testing::TempDir dir;
    const auto t = WordTokenizer::fromWords({"x", "y"});
    t.save(dir / "tok.json");
    const auto back = WordTokenizer::load(dir / "tok.json");
    EXPECT_EQ(back.words(), t.words());
    EXPECT_THROW(WordTokenizer::load(dir / "none.json"), std::runtime_error);
    dir.write("bad.json", "{\"type\": \"other\"}");
    EXPECT_THROW(WordTokenizer::load(dir / "bad.json"), std::runtime_error);
    dir.write("bad2.json", "not json");
    EXPECT_THROW(WordTokenizer::load(dir / "bad2.json"), std::runtime_error);
}
