#pragma once
// Prompt emphasis and long prompts as the AUTOMATIC1111 web UI reads them (modules/prompt_parser.py and
// sd_hijack_clip.py), so prompts written for it give the same per-token weights here.
//
// Syntax: "(text)" multiplies the weight by 1.1, "[text]" divides it by 1.1, "(text:1.3)" multiplies by
// the given factor; nesting multiplies ("((a))" = 1.21). "\(", "\)", "\[", "\]" and "\\" are literal
// characters. Brackets still open at the end are closed there. A word "BREAK" on its own ends the current
// 75-token chunk. Where this differs from A1111, on purpose:
//   - A1111 drops a backslash that escapes nothing ("a\b" -> "ab"); so does this, to stay compatible.
//   - A1111 scales a BREAK inside brackets like text, which silently turns it into the literal word
//     "BREAK"; here a BREAK always breaks.
//   - "(a:1.2.3)" makes A1111 fail on float("1.2.3"); here the ':' is read as text and ')' closes with 1.1.
//   - Empty fragments carry no tokens and are left out.
//   - Chunks are cut at exactly 75 tokens: A1111's optional comma back-tracking and textual-inversion
//     embeddings are not applied.

#include <string>
#include <string_view>
#include <vector>

#include "inference/tokenizer/clip_tokenizer.h"

namespace easel::inference {

struct PromptFragment {
    std::string text;
    float weight = 1.0f;
    // A "BREAK": no text; the next fragment starts a new chunk.
    bool isBreak = false;
};

// Splits a prompt into runs of equal weight; adjacent runs with the same weight are merged. An empty
// prompt gives one empty fragment of weight 1.
std::vector<PromptFragment> parsePromptAttention(std::string_view prompt);

// One prompt as text-encoder input: each chunk is BOS + up to 75 tokens + EOS, padded with `padId` to 77,
// and `weights` holds one weight per position (1 on BOS, EOS and padding).
struct WeightedPrompt {
    std::vector<std::vector<int>> chunks;
    std::vector<std::vector<float>> weights;
};

// Tokens per chunk between BOS and EOS.
constexpr int kPromptChunkTokens = CLIPTokenizer::kContextLength - 2;

// Tokenizes every fragment on its own (as A1111 does) and cuts the tokens into 75-token chunks; an empty
// prompt gives a single chunk of BOS, EOS and padding.
WeightedPrompt tokenizeWeighted(const CLIPTokenizer& tokenizer, std::string_view prompt, int padId);

}  // namespace easel::inference
