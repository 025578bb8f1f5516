// A1111's <lora:...> prompt tags: taken out of the prompt with their multipliers, malformed ones named.

#include "common/lora_tags.h"

#include <gtest/gtest.h>

namespace easel {
namespace {

TEST(LoraTags, TagsAreTakenOutWithTheirMultipliers) {
    const auto r = extractLoraTags("a castle, <lora:ink_style:0.7> at night <lyco:grain>, <lora:detail:0.4:0.9>");
    EXPECT_EQ(r.prompt, "a castle, at night");
    ASSERT_EQ(r.loras.size(), 3u);
    EXPECT_EQ(r.loras[0].name, "ink_style");
    EXPECT_DOUBLE_EQ(r.loras[0].textEncoderStrength, 0.7);
    EXPECT_DOUBLE_EQ(r.loras[0].unetStrength, 0.7);
    EXPECT_EQ(r.loras[1].name, "grain");
    EXPECT_DOUBLE_EQ(r.loras[1].unetStrength, 1.0);  // no multiplier: 1
    EXPECT_DOUBLE_EQ(r.loras[2].textEncoderStrength, 0.4);
    EXPECT_DOUBLE_EQ(r.loras[2].unetStrength, 0.9);
    EXPECT_TRUE(r.errors.empty());
}

TEST(LoraTags, NamedArgumentsAndNegativeWeights) {
    const auto r = extractLoraTags("<lora:x:unet=0.3:te=-0.5>portrait");
    EXPECT_EQ(r.prompt, "portrait");
    ASSERT_EQ(r.loras.size(), 1u);
    EXPECT_DOUBLE_EQ(r.loras[0].textEncoderStrength, -0.5);
    EXPECT_DOUBLE_EQ(r.loras[0].unetStrength, 0.3);
}

TEST(LoraTags, OtherAngleBracketsAndPlainTextStay) {
    const auto r = extractLoraTags("a <hypernet:foo:1> cat, 3 < 4 > 2");
    EXPECT_EQ(r.prompt, "a <hypernet:foo:1> cat, 3 < 4 > 2");
    EXPECT_TRUE(r.loras.empty());
    EXPECT_EQ(extractLoraTags("no tags at all").prompt, "no tags at all");
    // A tag between two list items leaves one separator with one space.
    EXPECT_EQ(extractLoraTags("a, <lora:x:1>, b").prompt, "a, b");
    EXPECT_EQ(extractLoraTags("a <lora:x:1> b").prompt, "a b");
}

TEST(LoraTags, MalformedTagsAreNamed) {
    const auto r = extractLoraTags("x <lora:a:abc> <lora::1> <lora:b:1:2:3> <lora:c:speed=2>");
    EXPECT_TRUE(r.loras.empty());
    ASSERT_EQ(r.errors.size(), 4u);
    EXPECT_EQ(r.errors[0], "<lora:a:abc>: 'abc' is not a number");
    EXPECT_NE(r.errors[1].find("needs a name"), std::string::npos);
    EXPECT_NE(r.errors[2].find("at most two"), std::string::npos);
    EXPECT_NE(r.errors[3].find("te=NUMBER"), std::string::npos);
    EXPECT_EQ(r.prompt, "x");
}

TEST(LoraTags, FormatWritesWhatParseReads) {
    EXPECT_EQ(formatLoraTag({"ink", 0.7, 0.7}), "<lora:ink:0.7>");
    EXPECT_EQ(formatLoraTag({"ink", 0.5, 1}), "<lora:ink:0.5:1>");
    const auto back = extractLoraTags(formatLoraTag({"ink", 0.25, -1.5}));
    ASSERT_EQ(back.loras.size(), 1u);
    EXPECT_DOUBLE_EQ(back.loras[0].textEncoderStrength, 0.25);
    EXPECT_DOUBLE_EQ(back.loras[0].unetStrength, -1.5);
}

TEST(LoraTags, StrengthListsAsTheHostedApiSendsThem) {
    EXPECT_EQ(parseStrengthList("0.8"), (std::vector<double>{0.8}));
    EXPECT_EQ(parseStrengthList("0.8, 0.5,1"), (std::vector<double>{0.8, 0.5, 1.0}));
    EXPECT_FALSE(parseStrengthList("0.8,,1"));
    EXPECT_FALSE(parseStrengthList("strong"));
    EXPECT_FALSE(parseStrengthList("nan"));
}

}  // namespace
}  // namespace easel
