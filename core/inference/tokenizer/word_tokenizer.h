#pragma once
// The word-level tokenizer of Easel's built-in model: lower-cased words (letters only) looked up in
// a small vocabulary stored with the model as JSON. Same framing as CLIP: BOS, ids, EOS, then
// padding with EOS to the context length.

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace easel::inference {

class WordTokenizer {
public:
    static constexpr const char* kBos = "<|startoftext|>";
    static constexpr const char* kEos = "<|endoftext|>";
    static constexpr const char* kUnk = "<|unk|>";

    // Vocabulary: the three specials, then `words` in order (duplicates ignored).
    static WordTokenizer fromWords(const std::vector<std::string>& words);
    // {"type": "easel-word", "vocab": ["<|startoftext|>", ...]}; throws std::runtime_error naming the file.
    static WordTokenizer load(const std::filesystem::path& path);
    void save(const std::filesystem::path& path) const;

    std::vector<int> encode(std::string_view text) const;  // no BOS/EOS
    // BOS + ids (truncated to length - 2) + EOS + EOS padding.
    std::vector<int> encodePadded(std::string_view text, int length = 77) const;
    int bosId() const { return 0; }
    int eosId() const { return 1; }
    int unkId() const { return 2; }
    int vocabSize() const { return static_cast<int>(m_words.size()); }
    const std::vector<std::string>& words() const { return m_words; }

private:
    std::vector<std::string> m_words;
    std::unordered_map<std::string, int> m_ids;
};

}  // namespace easel::inference
