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
//   - Chunks are cut at exactly 75 tokens: A1111's optional comma back-tracking is not applied.
// Textual-inversion trigger words (embedding_triggers.h) are replaced as A1111's tokenize_line does: each
// occurrence becomes `vectors` placeholder positions (id kEmbeddingPlaceholderId, the fragment's weight),
// moved whole to the next chunk when they would straddle a chunk boundary (only an embedding of more
// than 75 vectors is split), and the positions are reported so the text encoder can put the vectors there.

#include <string>
#include <string_view>
#include <vector>

#include "inference/tokenizer/clip_tokenizer.h"
#include "inference/tokenizer/embedding_triggers.h"

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

// A prompt position that takes a textual-inversion vector instead of its token's embedding row.
struct EmbeddingSlot {
    int position = 0;  // within the chunk's 77 positions (BOS is 0)
    int trigger = 0;   // index into EmbeddingTriggers::triggers()
    int vector = 0;    // row of that embedding's vectors
};

// The id A1111 puts at an embedding's positions; its token-embedding row is replaced anyway.
constexpr int kEmbeddingPlaceholderId = 0;

// One prompt as text-encoder input: each chunk is BOS + up to 75 tokens + EOS, padded with `padId` to 77,
// and `weights` holds one weight per position (1 on BOS, EOS and padding). `embeddings` has one list per
// chunk (empty without triggers).
struct WeightedPrompt {
    std::vector<std::vector<int>> chunks;
    std::vector<std::vector<float>> weights;
    std::vector<std::vector<EmbeddingSlot>> embeddings;
};

// Tokens per chunk between BOS and EOS.
constexpr int kPromptChunkTokens = CLIPTokenizer::kContextLength - 2;

// Tokenizes every fragment on its own (as A1111 does) and cuts the tokens into 75-token chunks; an empty
// prompt gives a single chunk of BOS, EOS and padding. With `triggers`, their words inside each fragment
// become embedding slots (see above).
WeightedPrompt tokenizeWeighted(const CLIPTokenizer& tokenizer, std::string_view prompt, int padId,
                                const EmbeddingTriggers* triggers = nullptr);

}  // namespace easel::inference
