#include "inference/tokenizer/prompt_parser.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>

namespace easel::inference {

namespace {

// A1111's factors; the weights are kept in double until the end so that merging equal weights sees the same
// values Python's floats would.
constexpr double kRoundBracketFactor = 1.1;
constexpr double kSquareBracketFactor = 1 / 1.1;
constexpr std::string_view kBreakWord = "BREAK";

struct RawFragment {
    std::string text;
    double weight = 1.0;
    bool isBreak = false;
};

bool isAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's \w, which decides the \b around BREAK: letters and digits of any script, and '_'.
bool isWordChar(UChar32 c) { return c == '_' || (c >= 0 && (U_GET_GC_MASK(c) & (U_GC_L_MASK | U_GC_N_MASK)) != 0); }

UChar32 codePointBefore(std::string_view text, std::size_t pos) {
    if (pos == 0) return -1;
    auto i = static_cast<std::int32_t>(pos);
    UChar32 c = 0;
    U8_PREV(reinterpret_cast<const std::uint8_t*>(text.data()), 0, i, c);
    return c;
}

UChar32 codePointAt(std::string_view text, std::size_t pos) {
    if (pos >= text.size()) return -1;
    auto i = static_cast<std::int32_t>(pos);
    UChar32 c = 0;
    U8_NEXT(reinterpret_cast<const std::uint8_t*>(text.data()), i, static_cast<std::int32_t>(text.size()), c);
    return c;
}

// re.split(r"\s*\bBREAK\b\s*", text). Only ASCII whitespace is trimmed around the word; any other
// whitespace left over is dropped by the tokenizer anyway.
std::vector<std::string> splitOnBreak(std::string_view text) {
    std::vector<std::string> parts;
    std::size_t partStart = 0;
    for (std::size_t search = 0;;) {
        const std::size_t at = text.find(kBreakWord, search);
        if (at == std::string_view::npos) break;
        const std::size_t after = at + kBreakWord.size();
        if (isWordChar(codePointBefore(text, at)) || isWordChar(codePointAt(text, after))) {
            search = at + 1;
            continue;
        }
        std::size_t cutStart = at;
        while (cutStart > partStart && isAsciiSpace(text[cutStart - 1])) --cutStart;
        std::size_t cutEnd = after;
        while (cutEnd < text.size() && isAsciiSpace(text[cutEnd])) ++cutEnd;
        parts.emplace_back(text.substr(partStart, cutStart - partStart));
        partStart = search = cutEnd;
    }
    parts.emplace_back(text.substr(partStart));
    return parts;
}

struct ExplicitWeight {
    double factor;
    std::size_t length;  // of the whole ":<number>)" match
};

// A1111's `:\s*([+-]?[.\d]+)\s*\)` at `pos` (a ':'). A number Python's float() would refuse gives nullopt, so
// the ':' is read as text instead of failing the whole prompt.
std::optional<ExplicitWeight> matchExplicitWeight(std::string_view prompt, std::size_t pos) {
    std::size_t i = pos + 1;
    while (i < prompt.size() && isAsciiSpace(prompt[i])) ++i;
    const std::size_t numberStart = i;
    if (i < prompt.size() && (prompt[i] == '+' || prompt[i] == '-')) ++i;
    const std::size_t digitsStart = i;
    while (i < prompt.size() && (prompt[i] == '.' || (prompt[i] >= '0' && prompt[i] <= '9'))) ++i;
    if (i == digitsStart) return std::nullopt;
    const std::size_t numberEnd = i;
    while (i < prompt.size() && isAsciiSpace(prompt[i])) ++i;
    if (i >= prompt.size() || prompt[i] != ')') return std::nullopt;

    // from_chars takes '-' but not '+'.
    const std::size_t parseStart = prompt[numberStart] == '+' ? numberStart + 1 : numberStart;
    double factor = 0.0;
    const char* first = prompt.data() + parseStart;
    const char* last = prompt.data() + numberEnd;
    const auto [end, error] = std::from_chars(first, last, factor);
    if (error != std::errc() || end != last) return std::nullopt;
    return ExplicitWeight{factor, i + 1 - pos};
}

bool isEscapable(char c) { return c == '(' || c == ')' || c == '[' || c == ']' || c == '\\'; }

}  // namespace

std::vector<PromptFragment> parsePromptAttention(std::string_view prompt) {
    std::vector<RawFragment> fragments;
    std::vector<std::size_t> roundBrackets;
    std::vector<std::size_t> squareBrackets;

    // Closing a bracket scales everything written since it opened; a BREAK is a marker, not text.
    const auto scaleFrom = [&fragments](std::size_t start, double factor) {
        for (std::size_t p = start; p < fragments.size(); ++p) {
            if (!fragments[p].isBreak) fragments[p].weight *= factor;
        }
    };
    const auto appendText = [&fragments](std::string_view text) {
        const auto parts = splitOnBreak(text);
        for (std::size_t i = 0; i < parts.size(); ++i) {
            if (i > 0) fragments.push_back({"", 1.0, true});
            fragments.push_back({parts[i], 1.0, false});
        }
    };
    const auto popBracket = [](std::vector<std::size_t>& stack) {
        const std::size_t start = stack.back();
        stack.pop_back();
        return start;
    };

    for (std::size_t i = 0; i < prompt.size();) {
        const char c = prompt[i];
        if (c == '\\') {
            // A backslash that escapes nothing is dropped, as in A1111.
            const bool escapes = i + 1 < prompt.size() && isEscapable(prompt[i + 1]);
            if (escapes) fragments.push_back({std::string(1, prompt[i + 1])});
            i += escapes ? 2 : 1;
        } else if (c == '(') {
            roundBrackets.push_back(fragments.size());
            ++i;
        } else if (c == '[') {
            squareBrackets.push_back(fragments.size());
            ++i;
        } else if (c == ':') {
            const auto weight = matchExplicitWeight(prompt, i);
            const std::size_t length = weight ? weight->length : 1;
            if (weight && !roundBrackets.empty()) {
                scaleFrom(popBracket(roundBrackets), weight->factor);
            } else {
                appendText(prompt.substr(i, length));
            }
            i += length;
        } else if (c == ')' && !roundBrackets.empty()) {
            scaleFrom(popBracket(roundBrackets), kRoundBracketFactor);
            ++i;
        } else if (c == ']' && !squareBrackets.empty()) {
            scaleFrom(popBracket(squareBrackets), kSquareBracketFactor);
            ++i;
        } else if (c == ')' || c == ']') {
            appendText(prompt.substr(i, 1));
            ++i;
        } else {
            const std::size_t end = std::min(prompt.find_first_of("\\()[]:", i), prompt.size());
            appendText(prompt.substr(i, end - i));
            i = end;
        }
    }
    // Unclosed brackets close at the end: all round ones first, then the square ones, as A1111 does.
    for (const std::size_t start : roundBrackets) scaleFrom(start, kRoundBracketFactor);
    for (const std::size_t start : squareBrackets) scaleFrom(start, kSquareBracketFactor);

    std::vector<RawFragment> merged;
    for (auto& fragment : fragments) {
        if (!fragment.isBreak && fragment.text.empty()) continue;
        if (!fragment.isBreak && !merged.empty() && !merged.back().isBreak && merged.back().weight == fragment.weight) {
            merged.back().text += fragment.text;
        } else {
            merged.push_back(std::move(fragment));
        }
    }

    std::vector<PromptFragment> result;
    result.reserve(std::max<std::size_t>(merged.size(), 1));
    for (auto& fragment : merged) {
        result.push_back({std::move(fragment.text), static_cast<float>(fragment.weight), fragment.isBreak});
    }
    if (result.empty()) result.push_back({"", 1.0f, false});
    return result;
}

WeightedPrompt tokenizeWeighted(const CLIPTokenizer& tokenizer, std::string_view prompt, int padId,
                                const EmbeddingTriggers* triggers) {
    WeightedPrompt result;
    std::vector<int> tokens;
    std::vector<float> weights;
    std::vector<EmbeddingSlot> slots;
    const auto closeChunk = [&] {
        result.chunks.push_back(tokenizer.padToContext(tokens, padId));
        std::vector<float> chunkWeights(CLIPTokenizer::kContextLength, 1.0f);
        std::copy(weights.begin(), weights.end(), chunkWeights.begin() + 1);
        result.weights.push_back(std::move(chunkWeights));
        result.embeddings.push_back(std::move(slots));
        tokens.clear();
        weights.clear();
        slots.clear();
    };
    constexpr auto kChunk = static_cast<std::size_t>(kPromptChunkTokens);

    for (const auto& fragment : parsePromptAttention(prompt)) {
        if (fragment.isBreak) {
            closeChunk();
            continue;
        }
        // Each fragment is tokenized on its own, so "(red)car" gives the tokens of "red" and "car"; a
        // trigger word is matched within one fragment, as in A1111.
        const std::vector<int> ids = tokenizer.encode(fragment.text);
        for (std::size_t i = 0; i < ids.size();) {
            if (tokens.size() == kChunk) closeChunk();
            const auto match = triggers != nullptr ? triggers->matchAt(ids, i) : std::nullopt;
            if (!match) {
                tokens.push_back(ids[i++]);
                weights.push_back(fragment.weight);
                continue;
            }
            const auto& trigger = triggers->triggers()[static_cast<std::size_t>(match->trigger)];
            const auto vectors = static_cast<std::size_t>(trigger.vectors);
            // Keep an embedding in one chunk when it fits in one (A1111's tokenize_line).
            if (!tokens.empty() && vectors <= kChunk && tokens.size() + vectors > kChunk) closeChunk();
            for (std::size_t v = 0; v < vectors; ++v) {
                if (tokens.size() == kChunk) closeChunk();
                slots.push_back({static_cast<int>(tokens.size()) + 1, match->trigger, static_cast<int>(v)});
                tokens.push_back(kEmbeddingPlaceholderId);
                weights.push_back(fragment.weight);
            }
            i += static_cast<std::size_t>(match->length);
        }
    }
    // A chunk ended by a trailing BREAK is not followed by an empty one; an empty prompt still gets one.
    if (!tokens.empty() || result.chunks.empty()) closeChunk();
    return result;
}

}  // namespace easel::inference
