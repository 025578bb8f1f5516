#include "inference/tokenizer/clip_tokenizer.h"

#include <unicode/uchar.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "inference/tokenizer/text_cleanup.h"

namespace easel::inference {

namespace {

namespace fs = std::filesystem;
using text::cleanForCLIP;
using text::CodePoints;
using text::decodeUtf8;
using text::encodeUtf8;
using text::isLetter;
using text::isNumber;
using text::isPythonSpace;

// openai/CLIP keeps merges[1 : 49152 - 256 - 2 + 1]: the vocabulary is 49152 entries minus the 256 byte
// symbols (counted twice, with and without "</w>") and the two special tokens.
constexpr std::size_t kClipMergeCount = 49152 - 256 - 2;
constexpr std::string_view kStartOfText = "<|startoftext|>";
constexpr std::string_view kEndOfText = "<|endoftext|>";
constexpr std::u32string_view kStartOfTextU = U"<|startoftext|>";
constexpr std::u32string_view kEndOfTextU = U"<|endoftext|>";
// A server sees unbounded distinct words; dropping the memo now and then keeps memory flat while the
// common prompt words still hit.
constexpr std::size_t kMaxCacheEntries = 1 << 16;

// ---- the CLIP split and byte alphabet -------------------------------------------------------------------

// The reference compiles its pattern with IGNORECASE, which compares literals by simple case folding: after
// lowercasing this still lets "'ſ" (long s) match "'s", and "<|ſtartoftext|>" match as one piece.
bool startsWithIgnoringCase(std::u32string_view text, std::u32string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const auto c = static_cast<UChar32>(text[i]);
        if (c != static_cast<UChar32>(prefix[i]) &&
            u_foldCase(c, U_FOLD_CASE_DEFAULT) != static_cast<UChar32>(prefix[i])) {
            return false;
        }
    }
    return true;
}

// The CLIP pattern `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
// as findall() reads it: at each position the first alternative that matches wins; whitespace matches none.
std::vector<std::u32string_view> splitLikeCLIP(std::u32string_view text) {
    static constexpr std::u32string_view kLiterals[] = {kStartOfTextU, kEndOfTextU, U"'s",  U"'t", U"'re",
                                                        U"'ve",        U"'m",       U"'ll", U"'d"};
    std::vector<std::u32string_view> pieces;
    for (std::size_t i = 0; i < text.size();) {
        const std::u32string_view rest = text.substr(i);
        std::size_t length = 0;
        for (const auto literal : kLiterals) {
            if (startsWithIgnoringCase(rest, literal)) {
                length = literal.size();
                break;
            }
        }
        const auto isOther = [](char32_t c) { return !isPythonSpace(c) && !isLetter(c) && !isNumber(c); };
        if (length == 0 && isLetter(rest[0])) {
            while (length < rest.size() && isLetter(rest[length])) ++length;
        } else if (length == 0 && isNumber(rest[0])) {
            length = 1;
        } else if (length == 0 && isOther(rest[0])) {
            while (length < rest.size() && isOther(rest[length])) ++length;
        }
        if (length == 0) {
            ++i;
            continue;
        }
        pieces.push_back(rest.substr(0, length));
        i += length;
    }
    return pieces;
}

// GPT-2/CLIP's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes are moved to
// U+0100 onwards, so every byte is a visible symbol. `order` is the vocabulary order (printable ones first).
struct ByteAlphabet {
    std::array<std::string, 256> symbolOf;
    std::array<std::uint8_t, 256> order;
};

const ByteAlphabet& byteAlphabet() {
    static const ByteAlphabet alphabet = [] {
        ByteAlphabet a{};
        const auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
        std::size_t next = 0;
        for (int b = 0; b < 256; ++b) {
            if (!printable(b)) continue;
            a.order[next++] = static_cast<std::uint8_t>(b);
            a.symbolOf[b] = encodeUtf8(std::u32string(1, static_cast<char32_t>(b)));
        }
        char32_t shifted = 256;
        for (int b = 0; b < 256; ++b) {
            if (printable(b)) continue;
            a.order[next++] = static_cast<std::uint8_t>(b);
            a.symbolOf[b] = encodeUtf8(std::u32string(1, shifted++));
        }
        return a;
    }();
    return alphabet;
}

// ---- file reading ---------------------------------------------------------------------------------------

void requireFile(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw TokenizerError("tokenizer file not found: '" + path.string() + "'");
}

std::string readTextFile(const fs::path& path) {
    requireFile(path);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TokenizerError("cannot open tokenizer file '" + path.string() + "'");
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) throw TokenizerError("cannot read tokenizer file '" + path.string() + "'");
    return content.str();
}

std::string readGzipFile(const fs::path& path) {
    requireFile(path);
    gzFile file = gzopen(path.c_str(), "rb");
    if (file == nullptr) throw TokenizerError("cannot open BPE merges file '" + path.string() + "'");
    const std::unique_ptr<gzFile_s, int (*)(gzFile)> closer(file, &gzclose);
    std::string content;
    std::array<char, 1 << 16> buffer{};
    for (;;) {
        const int n = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()));
        if (n <= 0) break;
        content.append(buffer.data(), static_cast<std::size_t>(n));
    }
    // gzread reports a truncated stream (Z_BUF_ERROR) only through gzerror, after returning what it had.
    int code = Z_OK;
    const char* message = gzerror(file, &code);
    if (code != Z_OK) {
        throw TokenizerError("corrupt gzip file '" + path.string() + "': " + (message != nullptr ? message : "?"));
    }
    return content;
}

std::vector<std::string_view> splitLines(std::string_view text) {
    std::vector<std::string_view> lines;
    for (std::size_t pos = 0;;) {
        const std::size_t newline = text.find('\n', pos);
        lines.push_back(text.substr(pos, newline == std::string_view::npos ? std::string_view::npos : newline - pos));
        if (newline == std::string_view::npos) return lines;
        pos = newline + 1;
    }
}

// A merge line is two symbols separated by whitespace, as Python's str.split() reads it.
std::optional<std::pair<std::string, std::string>> parseMerge(std::string_view line) {
    std::vector<std::string> parts;
    std::istringstream in{std::string(line)};
    for (std::string part; in >> part;) parts.push_back(std::move(part));
    if (parts.size() != 2) return std::nullopt;
    return std::make_pair(std::move(parts[0]), std::move(parts[1]));
}

}  // namespace

struct CLIPTokenizer::BpeCache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int>> entries;
};

CLIPTokenizer::CLIPTokenizer(std::unordered_map<std::string, int> encoder,
                             const std::vector<std::pair<std::string, std::string>>& merges, const std::string& source)
    : m_encoder(std::move(encoder)), m_cache(std::make_unique<BpeCache>()) {
    m_bpeRanks.reserve(merges.size());
    // Later duplicates win, as in the reference's dict(zip(merges, range(len(merges)))).
    for (std::size_t i = 0; i < merges.size(); ++i) {
        m_bpeRanks[merges[i].first + ' ' + merges[i].second] = static_cast<int>(i);
    }
    const auto bos = m_encoder.find(std::string(kStartOfText));
    const auto eos = m_encoder.find(std::string(kEndOfText));
    if (bos == m_encoder.end() || eos == m_encoder.end()) {
        throw TokenizerError("vocabulary '" + source + "' lacks " + std::string(kStartOfText) + " or " +
                             std::string(kEndOfText));
    }
    m_bosId = bos->second;
    m_eosId = eos->second;
}

CLIPTokenizer::CLIPTokenizer(CLIPTokenizer&&) noexcept = default;
CLIPTokenizer& CLIPTokenizer::operator=(CLIPTokenizer&&) noexcept = default;
CLIPTokenizer::~CLIPTokenizer() = default;

CLIPTokenizer CLIPTokenizer::fromBpeGz(const std::filesystem::path& path) {
    const std::string content = readGzipFile(path);
    const auto corrupt = [&path](const std::string& why) {
        return TokenizerError("corrupt BPE merges file '" + path.string() + "': " + why);
    };
    if (!decodeUtf8(content, true)) throw corrupt("not UTF-8 text");
    const auto lines = splitLines(content);
    if (lines.size() < kClipMergeCount + 1) {
        throw corrupt("expected a header line and " + std::to_string(kClipMergeCount) + " merges, found " +
                      std::to_string(lines.size()) + " lines");
    }
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(kClipMergeCount);
    for (std::size_t i = 1; i <= kClipMergeCount; ++i) {
        auto merge = parseMerge(lines[i]);
        if (!merge) throw corrupt("line " + std::to_string(i + 1) + " is not a pair of symbols");
        merges.push_back(std::move(*merge));
    }

    // Vocabulary order of the reference: byte symbols, the same with "</w>", each merge result, specials.
    std::unordered_map<std::string, int> encoder;
    encoder.reserve(2 * 256 + merges.size() + 2);
    const auto& alphabet = byteAlphabet();
    for (std::size_t k = 0; k < 256; ++k) encoder[alphabet.symbolOf[alphabet.order[k]]] = static_cast<int>(k);
    for (std::size_t k = 0; k < 256; ++k) {
        encoder[alphabet.symbolOf[alphabet.order[k]] + "</w>"] = static_cast<int>(256 + k);
    }
    int next = 512;
    for (const auto& [left, right] : merges) encoder[left + right] = next++;
    encoder[std::string(kStartOfText)] = next++;
    encoder[std::string(kEndOfText)] = next;
    return CLIPTokenizer(std::move(encoder), merges, path.string());
}

CLIPTokenizer CLIPTokenizer::fromVocabAndMerges(const std::filesystem::path& vocabJsonPath,
                                                const std::filesystem::path& mergesTxtPath) {
    const std::string vocabText = readTextFile(vocabJsonPath);
    const std::string mergesText = readTextFile(mergesTxtPath);

    std::unordered_map<std::string, int> encoder;
    try {
        const auto json = nlohmann::json::parse(vocabText);
        if (!json.is_object()) throw TokenizerError("is not a JSON object of token ids");
        for (const auto& [token, id] : json.items()) {
            if (!id.is_number_integer()) throw TokenizerError("id of token '" + token + "' is not an integer");
            encoder[token] = id.get<int>();
        }
    } catch (const std::exception& e) {
        throw TokenizerError("corrupt vocabulary file '" + vocabJsonPath.string() + "': " + e.what());
    }

    std::vector<std::pair<std::string, std::string>> merges;
    const auto lines = splitLines(mergesText);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string_view line = lines[i];
        if (i == 0 && line.starts_with("#version")) continue;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        auto merge = parseMerge(line);
        if (!merge) {
            throw TokenizerError("corrupt merges file '" + mergesTxtPath.string() + "': line " + std::to_string(i + 1) +
                                 " is not a pair of symbols");
        }
        merges.push_back(std::move(*merge));
    }
    return CLIPTokenizer(std::move(encoder), merges, vocabJsonPath.string());
}

std::string CLIPTokenizer::cleanText(std::string_view text) { return encodeUtf8(cleanForCLIP(text)); }

std::vector<int> CLIPTokenizer::encode(std::string_view text) const {
    const CodePoints clean = cleanForCLIP(text);
    std::vector<int> ids;
    for (const std::u32string_view piece : splitLikeCLIP(clean)) {
        if (piece == kStartOfTextU) {
            ids.push_back(m_bosId);
        } else if (piece == kEndOfTextU) {
            ids.push_back(m_eosId);
        } else {
            const std::vector<int> pieceIds = this->pieceIds(encodeUtf8(piece));
            ids.insert(ids.end(), pieceIds.begin(), pieceIds.end());
        }
    }
    return ids;
}

std::vector<int> CLIPTokenizer::pieceIds(const std::string& piece) const {
    {
        const std::lock_guard lock(m_cache->mutex);
        const auto it = m_cache->entries.find(piece);
        if (it != m_cache->entries.end()) return it->second;
    }
    std::vector<int> ids = mergePiece(piece);
    const std::lock_guard lock(m_cache->mutex);
    if (m_cache->entries.size() >= kMaxCacheEntries) m_cache->entries.clear();
    m_cache->entries.emplace(piece, ids);
    return ids;
}

// Byte-level BPE as in the reference: the piece's bytes become symbols, the last one marked "</w>", then the
// best-ranked adjacent pair is merged everywhere (left to right) until no known pair is left.
std::vector<int> CLIPTokenizer::mergePiece(const std::string& piece) const {
    const auto& alphabet = byteAlphabet();
    std::vector<std::string> word;
    word.reserve(piece.size());
    for (const char b : piece) word.push_back(alphabet.symbolOf[static_cast<unsigned char>(b)]);
    if (word.empty()) return {};
    word.back() += "</w>";

    std::string key;
    while (word.size() > 1) {
        int bestRank = INT_MAX;
        std::size_t best = word.size();
        for (std::size_t i = 0; i + 1 < word.size(); ++i) {
            key.assign(word[i]).append(1, ' ').append(word[i + 1]);
            const auto it = m_bpeRanks.find(key);
            if (it != m_bpeRanks.end() && it->second < bestRank) {
                bestRank = it->second;
                best = i;
            }
        }
        if (best == word.size()) break;
        const std::string first = word[best];
        const std::string second = word[best + 1];
        std::vector<std::string> merged;
        merged.reserve(word.size());
        for (std::size_t i = 0; i < word.size();) {
            if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
                merged.push_back(first + second);
                i += 2;
            } else {
                merged.push_back(std::move(word[i]));
                ++i;
            }
        }
        word = std::move(merged);
    }

    // A symbol missing from a (custom) vocabulary becomes the unknown token, which CLIP spells <|endoftext|>.
    std::vector<int> ids;
    ids.reserve(word.size());
    for (const auto& symbol : word) {
        const auto it = m_encoder.find(symbol);
        ids.push_back(it == m_encoder.end() ? m_eosId : it->second);
    }
    return ids;
}

std::vector<int> CLIPTokenizer::padToContext(const std::vector<int>& bpe, int padId, int length) const {
    if (length < 2) throw std::invalid_argument("padToContext: length must leave room for BOS and EOS");
    std::vector<int> out;
    out.reserve(static_cast<std::size_t>(length));
    out.push_back(m_bosId);
    const auto keep = std::min(bpe.size(), static_cast<std::size_t>(length - 2));
    out.insert(out.end(), bpe.begin(), bpe.begin() + static_cast<std::ptrdiff_t>(keep));
    out.push_back(m_eosId);
    out.resize(static_cast<std::size_t>(length), padId);
    return out;
}

}  // namespace easel::inference
