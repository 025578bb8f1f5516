#include "inference/tokenizer/word_tokenizer.h"

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace easel::inference {

WordTokenizer WordTokenizer::fromWords(const std::vector<std::string>& words) {
    WordTokenizer t;
    for (const auto* special : {kBos, kEos, kUnk}) {
        t.m_ids.emplace(special, static_cast<int>(t.m_words.size()));
        t.m_words.emplace_back(special);
    }
    for (const auto& w : words) {
        if (t.m_ids.emplace(w, static_cast<int>(t.m_words.size())).second) t.m_words.push_back(w);
    }
    return t;
}

WordTokenizer WordTokenizer::load(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read tokenizer '" + path.string() + "'");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error("tokenizer '" + path.string() + "' is not valid JSON: " + e.what());
    }
    if (j.value("type", "") != "easel-word" || !j.contains("vocab") || !j["vocab"].is_array() ||
        j["vocab"].size() < 3) {
        throw std::runtime_error("tokenizer '" + path.string() + "' is not an Easel word vocabulary");
    }
    auto words = j["vocab"].get<std::vector<std::string>>();
    if (words[0] != kBos || words[1] != kEos || words[2] != kUnk) {
        throw std::runtime_error("tokenizer '" + path.string() + "' does not start with the special tokens");
    }
    words.erase(words.begin(), words.begin() + 3);
    return fromWords(words);
}

void WordTokenizer::save(const std::filesystem::path& path) const {
    std::ofstream out(path);
    out << nlohmann::json{{"type", "easel-word"}, {"vocab", m_words}}.dump(1) << '\n';
    if (!out) throw std::runtime_error("cannot write tokenizer '" + path.string() + "'");
}

std::vector<int> WordTokenizer::encode(std::string_view text) const {
    std::vector<int> ids;
    std::string word;
    auto flush = [&] {
        if (word.empty()) return;
        const auto it = m_ids.find(word);
        ids.push_back(it == m_ids.end() ? unkId() : it->second);
        word.clear();
    };
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalpha(c)) {
            word.push_back(static_cast<char>(std::tolower(c)));
        } else {
            flush();
        }
    }
    flush();
    return ids;
}

std::vector<int> WordTokenizer::encodePadded(std::string_view text, int length) const {
    auto ids = encode(text);
    if (static_cast<int>(ids.size()) > length - 2) ids.resize(static_cast<std::size_t>(length - 2));
    std::vector<int> out{bosId()};
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(eosId());
    out.resize(static_cast<std::size_t>(length), eosId());
    return out;
}

}  // namespace easel::inference
