#pragma once
// The CLIP byte-level BPE tokenizer used by every Stable Diffusion text encoder, matching openai/CLIP's
// SimpleTokenizer (and transformers' slow CLIPTokenizer) id for id.
//
// Text goes through the same cleanup as the reference before it is split and merged:
//   1. an ftfy.fix_text (6.3) subset, applied per line and repeated until nothing changes:
//      HTML entities ending in ';' are decoded (only while no line so far contained '<', as ftfy's "auto"),
//      terminal colour escapes are dropped, UTF-8 read as Latin-1 / Windows-1252 ("Ã©" -> "é") is repaired
//      when the whole line round-trips, C1 controls become their Windows-1252 characters, Latin ligatures
//      are spelled out ("ﬁ" -> "fi"), full-width and half-width forms get their NFKC form, curly quotes
//      become ASCII quotes, line breaks become '\n', ftfy's list of control characters is removed, and the
//      result is NFC-normalised (which composes "e" + U+0301 into "é");
//   2. Python's html.unescape, twice (numeric references, and the HTML 4 named entities);
//   3. Python's str.strip, every run of Python whitespace collapsed to one space, and str.lower
//      (full Unicode case mapping, so "ẞ" -> "ß").
// All 42 prompts of the shared tokenizer reference, the five that ftfy changes included, give the exact
// reference ids. Known gaps, none of which occurs in the reference: ftfy's mojibake repair also handles
// mixed and partial mojibake, other legacy code pages and lossy sequences, which this does not try; and
// html.unescape knows ~2,000 rarer HTML5 entity names ("&notin;", "&bigstar;") that stay literal here.
// Invalid UTF-8 in the input is read as U+FFFD, since a Python str cannot hold it in the first place.

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace easel::inference {

// A missing, unreadable or malformed vocabulary file. The message names the file.
class TokenizerError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class CLIPTokenizer {
public:
    // Every SD 1.x/2.x text encoder sees 77 positions: BOS, 75 tokens, EOS (then padding).
    static constexpr int kContextLength = 77;

    // openai/CLIP's bpe_simple_vocab_16e6.txt.gz: a header line, then the merges (the first 48894 are used).
    static CLIPTokenizer fromBpeGz(const std::filesystem::path& path);
    // The Hugging Face layout: tokenizer/vocab.json ({token: id}) and tokenizer/merges.txt (an optional
    // "#version" line, then one "left right" merge per line, best first).
    static CLIPTokenizer fromVocabAndMerges(const std::filesystem::path& vocabJsonPath,
                                            const std::filesystem::path& mergesTxtPath);

    CLIPTokenizer(CLIPTokenizer&&) noexcept;
    CLIPTokenizer& operator=(CLIPTokenizer&&) noexcept;
    CLIPTokenizer(const CLIPTokenizer&) = delete;
    CLIPTokenizer& operator=(const CLIPTokenizer&) = delete;
    ~CLIPTokenizer();

    // BPE ids for `text` without BOS/EOS and not truncated, so callers can chunk long prompts.
    // Literal "<|startoftext|>" / "<|endoftext|>" become the special ids. Safe to call from several threads.
    std::vector<int> encode(std::string_view text) const;

    int bosId() const { return m_bosId; }
    int eosId() const { return m_eosId; }
    int vocabSize() const { return static_cast<int>(m_encoder.size()); }

    // BOS + the first `length - 2` ids + EOS, then `padId` up to `length` (49407 for SD 1.x, 0 for SD 2.x).
    std::vector<int> padToContext(const std::vector<int>& bpe, int padId, int length = kContextLength) const;

    // The cleanup described above, as UTF-8; exposed so the text the ids come from can be inspected.
    static std::string cleanText(std::string_view text);

private:
    struct BpeCache;

    CLIPTokenizer(std::unordered_map<std::string, int> encoder,
                  const std::vector<std::pair<std::string, std::string>>& merges, const std::string& source);

    // Ids for one piece of the regex split (raw UTF-8 bytes), memoised in m_cache.
    std::vector<int> pieceIds(const std::string& piece) const;
    std::vector<int> mergePiece(const std::string& piece) const;

    std::unordered_map<std::string, int> m_encoder;
    // "left right" -> rank; a space never occurs inside a byte-level symbol, so it can join the pair.
    std::unordered_map<std::string, int> m_bpeRanks;
    int m_bosId = 0;
    int m_eosId = 0;
    std::unique_ptr<BpeCache> m_cache;
};

}  // namespace easel::inference
