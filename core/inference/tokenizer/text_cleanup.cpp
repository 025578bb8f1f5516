// The text cleanup in front of the CLIP tokenizer (see text_cleanup.h): an ftfy.fix_text subset,
// Python's html.unescape, whitespace collapsing and full Unicode lower-casing, on ICU.

#include "inference/tokenizer/text_cleanup.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "inference/tokenizer/clip_tokenizer.h"  // TokenizerError

namespace easel::inference::text {

namespace {

// ftfy repeats its fixes until the text stops changing; each pass shrinks or keeps the text, so a small
// bound is only a guard.
constexpr int kMaxFixPasses = 16;

}  // namespace

// ---- UTF-8 and ICU bridges ---------------------------------------------------------------------------

// Malformed sequences become U+FFFD, or give nullopt when `strict`.
std::optional<CodePoints> decodeUtf8(std::string_view bytes, bool strict) {
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) throw std::length_error("text longer than 2 GiB");
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    const auto length = static_cast<std::int32_t>(bytes.size());
    CodePoints out;
    out.reserve(bytes.size());
    for (std::int32_t i = 0; i < length;) {
        UChar32 c = 0;
        U8_NEXT(data, i, length, c);
        if (c < 0) {
            if (strict) return std::nullopt;
            c = 0xFFFD;
        }
        out.push_back(static_cast<char32_t>(c));
    }
    return out;
}

namespace {

void appendUtf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

}  // namespace

std::string encodeUtf8(std::u32string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char32_t c : text) appendUtf8(out, c);
    return out;
}

namespace {

bool isAscii(std::u32string_view text) {
    return std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
}

icu::UnicodeString toIcu(std::u32string_view text) {
    return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()),
                                         static_cast<std::int32_t>(text.size()));
}

CodePoints fromIcu(const icu::UnicodeString& text) {
    CodePoints out;
    out.reserve(static_cast<std::size_t>(text.length()));
    for (std::int32_t i = 0; i < text.length();) {
        const UChar32 c = text.char32At(i);
        out.push_back(static_cast<char32_t>(c));
        i += U16_LENGTH(c);
    }
    return out;
}

CodePoints normalized(const CodePoints& text, bool compatibility) {
    if (isAscii(text)) return text;
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* normalizer =
        compatibility ? icu::Normalizer2::getNFKCInstance(status) : icu::Normalizer2::getNFCInstance(status);
    if (U_FAILURE(status) || normalizer == nullptr) {
        throw TokenizerError(std::string("ICU normalization data unavailable: ") + u_errorName(status));
    }
    const icu::UnicodeString result = normalizer->normalize(toIcu(text), status);
    if (U_FAILURE(status)) throw TokenizerError(std::string("ICU normalization failed: ") + u_errorName(status));
    return fromIcu(result);
}

// Python's str.lower()/upper(): full, locale-independent case mapping (ICU's root locale).
CodePoints changeCase(const CodePoints& text, bool upper) {
    icu::UnicodeString s = toIcu(text);
    if (upper) {
        s.toUpper(icu::Locale::getRoot());
    } else {
        s.toLower(icu::Locale::getRoot());
    }
    return fromIcu(s);
}

}  // namespace

// Python's str.isspace(), which is what `\s` and str.strip() use on str: bidi class WS/B/S or category Zs.
bool isPythonSpace(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    const auto cp = static_cast<UChar32>(c);
    const UCharDirection direction = u_charDirection(cp);
    return u_charType(cp) == U_SPACE_SEPARATOR || direction == U_WHITE_SPACE_NEUTRAL ||
           direction == U_BLOCK_SEPARATOR || direction == U_SEGMENT_SEPARATOR;
}

bool isLetter(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0; }
bool isNumber(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }

namespace {

// ---- Windows-1252 -----------------------------------------------------------------------------------

// Bytes 0x80..0x9F of Windows-1252. The five bytes it leaves undefined map to the C1 code point of the same
// value, as ftfy's "sloppy-windows-1252" codec and Python's html.unescape both do.
constexpr std::array<char32_t, 32> kCp1252High = {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
                                                  0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

int latin1Byte(char32_t c) { return c <= 0xFF ? static_cast<int>(c) : -1; }

int sloppyCp1252Byte(char32_t c) {
    if (c < 0x80 || (c >= 0xA0 && c <= 0xFF)) return static_cast<int>(c);
    const auto it = std::find(kCp1252High.begin(), kCp1252High.end(), c);
    return it == kCp1252High.end() ? -1 : 0x80 + static_cast<int>(it - kCp1252High.begin());
}

// ---- HTML character references ------------------------------------------------------------------------

// HTML 4's named entities (Latin-1 in code point order from U+00A0, then the rest). The Latin-1 names and
// the handful of ASCII ones are the HTML5 "legacy" names that also decode without a trailing ';'.
constexpr std::array<std::string_view, 96> kLatin1EntityNames = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",    "copy",   "ordf",
    "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",
    "para",   "middot", "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave",
    "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",
    "Igrave", "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",
    "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",  "agrave", "aacute",
    "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil", "egrave", "eacute", "ecirc",  "euml",   "igrave",
    "iacute", "icirc",  "iuml",   "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};

struct NamedEntity {
    std::string_view name;
    char32_t value;
};

constexpr NamedEntity kLegacyAsciiEntities[] = {{"amp", '&'},   {"lt", '<'},  {"gt", '>'}, {"quot", '"'},
                                                {"AMP", '&'},   {"LT", '<'},  {"GT", '>'}, {"QUOT", '"'},
                                                {"COPY", 0xA9}, {"REG", 0xAE}};

constexpr NamedEntity kOtherEntities[] = {
    {"apos", '\''},     {"OElig", 0x152},   {"oelig", 0x153},   {"Scaron", 0x160},  {"scaron", 0x161},
    {"Yuml", 0x178},    {"fnof", 0x192},    {"circ", 0x2C6},    {"tilde", 0x2DC},   {"thetasym", 0x3D1},
    {"upsih", 0x3D2},   {"piv", 0x3D6},     {"ensp", 0x2002},   {"emsp", 0x2003},   {"thinsp", 0x2009},
    {"zwnj", 0x200C},   {"zwj", 0x200D},    {"lrm", 0x200E},    {"rlm", 0x200F},    {"ndash", 0x2013},
    {"mdash", 0x2014},  {"lsquo", 0x2018},  {"rsquo", 0x2019},  {"sbquo", 0x201A},  {"ldquo", 0x201C},
    {"rdquo", 0x201D},  {"bdquo", 0x201E},  {"dagger", 0x2020}, {"Dagger", 0x2021}, {"bull", 0x2022},
    {"hellip", 0x2026}, {"permil", 0x2030}, {"prime", 0x2032},  {"Prime", 0x2033},  {"lsaquo", 0x2039},
    {"rsaquo", 0x203A}, {"oline", 0x203E},  {"frasl", 0x2044},  {"euro", 0x20AC},   {"trade", 0x2122},
    {"larr", 0x2190},   {"uarr", 0x2191},   {"rarr", 0x2192},   {"darr", 0x2193},   {"harr", 0x2194},
    {"minus", 0x2212},  {"infin", 0x221E},  {"ne", 0x2260},     {"le", 0x2264},     {"ge", 0x2265},
    {"spades", 0x2660}, {"clubs", 0x2663},  {"hearts", 0x2665}, {"diams", 0x2666}};

// Greek capitals from U+0391 (U+03A2 is unassigned); the small letters are the same names lower-cased from
// U+03B1, where U+03C2 is "sigmaf".
constexpr std::array<std::string_view, 25> kGreekEntityNames = {
    "Alpha", "Beta",    "Gamma", "Delta", "Epsilon", "Zeta",  "Eta", "Theta",   "Iota", "Kappa", "Lambda", "Mu",   "Nu",
    "Xi",    "Omicron", "Pi",    "Rho",   "",        "Sigma", "Tau", "Upsilon", "Phi",  "Chi",   "Psi",    "Omega"};

struct EntityTables {
    std::unordered_map<std::string, char32_t> withSemicolon;
    std::unordered_map<std::string, char32_t> legacy;
};

const EntityTables& entityTables() {
    static const EntityTables tables = [] {
        EntityTables t;
        auto addLegacy = [&t](std::string name, char32_t value) {
            t.legacy.emplace(name, value);
            t.withSemicolon.emplace(std::move(name), value);
        };
        for (std::size_t i = 0; i < kLatin1EntityNames.size(); ++i) {
            addLegacy(std::string(kLatin1EntityNames[i]), static_cast<char32_t>(0xA0 + i));
        }
        for (const auto& entity : kLegacyAsciiEntities) addLegacy(std::string(entity.name), entity.value);
        for (const auto& entity : kOtherEntities) t.withSemicolon.emplace(std::string(entity.name), entity.value);
        for (std::size_t i = 0; i < kGreekEntityNames.size(); ++i) {
            if (kGreekEntityNames[i].empty()) {
                t.withSemicolon.emplace("sigmaf", 0x3C2);
                continue;
            }
            std::string name(kGreekEntityNames[i]);
            t.withSemicolon.emplace(name, static_cast<char32_t>(0x391 + i));
            name[0] = static_cast<char>(name[0] - 'A' + 'a');
            t.withSemicolon.emplace(name, static_cast<char32_t>(0x3B1 + i));
        }
        return t;
    }();
    return tables;
}

std::optional<char32_t> lookupEntity(std::u32string_view name, bool withSemicolon) {
    if (!isAscii(name)) return std::nullopt;
    const std::string key(name.begin(), name.end());
    const auto& table = withSemicolon ? entityTables().withSemicolon : entityTables().legacy;
    const auto it = table.find(key);
    if (it == table.end()) return std::nullopt;
    return it->second;
}

// Python's html.unescape for "&#NNN" / "&#xHHH": Windows-1252 for 0x80..0x9F, U+FFFD for NUL, surrogates and
// out-of-range values, nothing for the code points HTML5 forbids.
void appendNumericReference(CodePoints& out, char32_t value) {
    if (value == 0) {
        out.push_back(0xFFFD);
    } else if (value >= 0x80 && value <= 0x9F) {
        out.push_back(kCp1252High[value - 0x80]);
    } else if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
        out.push_back(0xFFFD);
    } else if ((value >= 0x01 && value <= 0x08) || value == 0x0B || (value >= 0x0E && value <= 0x1F) || value == 0x7F ||
               (value >= 0xFDD0 && value <= 0xFDEF) || (value & 0xFFFE) == 0xFFFE) {
        return;
    } else {
        out.push_back(value);
    }
}

int digitValue(char32_t c, int base) {
    if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
    if (base == 16 && c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
    if (base == 16 && c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
    return -1;
}

bool endsReferenceName(char32_t c) {
    return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';';
}

// One match of html.unescape's pattern `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` starting
// after the '&' at `pos`: appends the replacement and returns the index past the match, or npos.
std::size_t replaceReference(std::u32string_view text, std::size_t pos, CodePoints& out) {
    const std::size_t n = text.size();
    if (pos < n && text[pos] == '#') {
        std::size_t j = pos + 1;
        int base = 10;
        if (j < n && digitValue(text[j], 10) < 0) {
            if ((text[j] != 'x' && text[j] != 'X') || j + 1 >= n || digitValue(text[j + 1], 16) < 0) {
                return std::u32string_view::npos;
            }
            base = 16;
            ++j;
        }
        if (j >= n) return std::u32string_view::npos;
        char32_t value = 0;
        for (; j < n && digitValue(text[j], base) >= 0; ++j) {
            value = std::min<char32_t>(value * base + digitValue(text[j], base), 0x110000);
        }
        if (j < n && text[j] == ';') ++j;
        appendNumericReference(out, value);
        return j;
    }
    std::size_t j = pos;
    while (j < n && j - pos < 32 && !endsReferenceName(text[j])) ++j;
    if (j == pos) return std::u32string_view::npos;
    const bool semicolon = j < n && text[j] == ';';
    const std::size_t end = semicolon ? j + 1 : j;
    const std::u32string_view name = text.substr(pos, j - pos);
    if (const auto value = lookupEntity(name, semicolon)) {
        out.push_back(*value);
        return end;
    }
    // Like the HTML5 parser, Python takes the longest legacy name that prefixes the reference ("&notit;").
    for (std::size_t length = std::min(name.size(), end - pos - 1); length >= 2; --length) {
        if (const auto value = lookupEntity(name.substr(0, length), false)) {
            out.push_back(*value);
            out.append(text.substr(pos + length, end - pos - length));
            return end;
        }
    }
    out.push_back('&');
    out.append(text.substr(pos, end - pos));
    return end;
}

// Python's html.unescape.
CodePoints pythonHtmlUnescape(const CodePoints& text) {
    if (text.find(U'&') == CodePoints::npos) return text;
    CodePoints out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        if (text[i] == '&') {
            const std::size_t end = replaceReference(text, i + 1, out);
            if (end != std::u32string_view::npos) {
                i = end;
                continue;
            }
        }
        out.push_back(text[i++]);
    }
    return out;
}

bool isAsciiAlnum(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// ftfy's unescape_html: only complete "&name;" / "&#NNN;" references, plus entity names someone upper-cased
// ("&EACUTE;" -> "É") where that reading is unambiguous.
CodePoints ftfyUnescapeHtml(const CodePoints& text) {
    if (text.find(U'&') == CodePoints::npos) return text;
    CodePoints out;
    const std::size_t n = text.size();
    for (std::size_t i = 0; i < n;) {
        if (text[i] == '&') {
            std::size_t start = i + 1;
            if (start < n && text[start] == '#') ++start;
            std::size_t j = start;
            while (j < n && j - start < 24 && isAsciiAlnum(text[j])) ++j;
            if (j > start && j < n && text[j] == ';') {
                const CodePoints reference = text.substr(i, j + 1 - i);
                const std::u32string_view name = std::u32string_view(text).substr(i + 1, j - i - 1);
                if (const auto value = lookupEntity(name, true)) {
                    out.push_back(*value);
                } else if (text[i + 1] == '#') {
                    const CodePoints decoded = pythonHtmlUnescape(reference);
                    out += decoded.find(U';') == CodePoints::npos ? decoded : reference;
                } else {
                    const CodePoints lower = changeCase(CodePoints(name), false);
                    const auto value = lookupEntity(lower, true);
                    const bool wasUpperCased = changeCase(lower, true) == name;
                    if (value && wasUpperCased && pythonHtmlUnescape(reference) == reference) {
                        out += changeCase(CodePoints(1, *value), true);
                    } else {
                        out += reference;
                    }
                }
                i = j + 1;
                continue;
            }
        }
        out.push_back(text[i++]);
    }
    return out;
}

// ---- ftfy.fix_text subset -------------------------------------------------------------------------------

// UTF-8 that was decoded as Latin-1 or Windows-1252 ("Ã©" for "é"): encode back and decode as UTF-8, trying
// the code pages in ftfy's order. Only when every character of the text takes part, because ftfy's
// finer-grained repairs (mixed text, lossy sequences) are not reproduced.
std::optional<CodePoints> repairMojibake(const CodePoints& text) {
    if (isAscii(text)) return std::nullopt;
    for (const auto byteOf : {&latin1Byte, &sloppyCp1252Byte}) {
        std::string bytes;
        bytes.reserve(text.size());
        bool encodable = true;
        for (const char32_t c : text) {
            const int b = byteOf(c);
            if (b < 0) {
                encodable = false;
                break;
            }
            bytes.push_back(static_cast<char>(b));
        }
        if (!encodable) continue;
        if (auto decoded = decodeUtf8(bytes, true)) return decoded;
    }
    return std::nullopt;
}

CodePoints fixEncoding(CodePoints text) {
    for (int pass = 0; pass < kMaxFixPasses; ++pass) {
        auto repaired = repairMojibake(text);
        if (!repaired) break;
        text = std::move(*repaired);
    }
    return text;
}

struct Ligature {
    char32_t from;
    std::u32string_view to;
};

// ftfy's fix_latin_ligatures table: typographic ligatures and the digraphs kept for Cyrillic conversion.
constexpr Ligature kLigatures[] = {
    {0x0132, U"IJ"},      {0x0133, U"ij"},      {0x0149, U"\u02BCn"}, {0x01F1, U"DZ"}, {0x01F2, U"Dz"}, {0x01F3, U"dz"},
    {0x01C4, U"D\u017D"}, {0x01C5, U"D\u017E"}, {0x01C6, U"d\u017E"}, {0x01C7, U"LJ"}, {0x01C8, U"Lj"}, {0x01C9, U"lj"},
    {0x01CA, U"NJ"},      {0x01CB, U"Nj"},      {0x01CC, U"nj"},      {0xFB00, U"ff"}, {0xFB01, U"fi"}, {0xFB02, U"fl"},
    {0xFB03, U"ffi"},     {0xFB04, U"ffl"},     {0xFB05, U"\u017Ft"}, {0xFB06, U"st"}};

// The character-by-character fixes of one ftfy pass, in ftfy's order: C1 controls, ligatures, character
// width, quotes, line breaks.
CodePoints fixCharacters(const CodePoints& text) {
    CodePoints out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        char32_t c = text[i];
        // This also turns U+0085 into U+2026 before the line-break step could see it, as in ftfy.
        if (c >= 0x80 && c <= 0x9F) c = kCp1252High[c - 0x80];
        const auto ligature =
            std::find_if(std::begin(kLigatures), std::end(kLigatures), [c](const Ligature& l) { return l.from == c; });
        if (ligature != std::end(kLigatures)) {
            out.append(ligature->to);
            continue;
        }
        if (c == 0x3000) {
            c = ' ';
        } else if (c >= 0xFF01 && c <= 0xFFEF) {
            // ftfy maps each full-width/half-width form to its NFKC form (a half-width voiced mark becomes a
            // combining mark that the closing NFC attaches).
            out += normalized(CodePoints(1, c), true);
            continue;
        }
        if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
        if (c >= 0x201C && c <= 0x201F) c = '"';
        if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
        if (c == '\r' || c == 0x2028 || c == 0x2029) c = '\n';
        out.push_back(c);
    }
    return out;
}

bool isAsciiLetter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool isFtfyControl(char32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// ftfy's remove_terminal_escapes (ANSI sequences "ESC [ digits-and-semicolons letter") followed by its
// remove_control_chars. One pass gives the same result: the sequences hold no control character but ESC.
CodePoints removeEscapesAndControls(const CodePoints& text) {
    CodePoints out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == '[') {
            std::size_t j = i + 2;
            while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == ';')) ++j;
            if (j < text.size() && isAsciiLetter(text[j])) {
                i = j + 1;
                continue;
            }
        }
        if (!isFtfyControl(text[i])) out.push_back(text[i]);
        ++i;
    }
    return out;
}

CodePoints fixSegment(CodePoints text, bool unescapeHtml) {
    for (int pass = 0; pass < kMaxFixPasses; ++pass) {
        const CodePoints before = text;
        if (unescapeHtml) text = ftfyUnescapeHtml(text);
        text = fixEncoding(std::move(text));
        text = fixCharacters(text);
        text = removeEscapesAndControls(text);
        text = normalized(text, false);
        if (text == before) break;
    }
    return text;
}

// ftfy.fix_text works line by line, and stops decoding HTML entities for good once a line contains '<'.
CodePoints fixTextLikeFtfy(const CodePoints& text) {
    CodePoints out;
    out.reserve(text.size());
    bool unescapeHtml = true;
    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t newline = text.find(U'\n', pos);
        const std::size_t end = newline == CodePoints::npos ? text.size() : newline + 1;
        CodePoints segment = text.substr(pos, end - pos);
        if (segment.find(U'<') != CodePoints::npos) unescapeHtml = false;
        out += fixSegment(std::move(segment), unescapeHtml);
        pos = end;
    }
    return out;
}

// str.strip() followed by re.sub(r"\s+", " ", text).
CodePoints collapseWhitespace(const CodePoints& text) {
    CodePoints out;
    out.reserve(text.size());
    bool pendingSpace = false;
    for (const char32_t c : text) {
        if (isPythonSpace(c)) {
            pendingSpace = !out.empty();
            continue;
        }
        if (pendingSpace) out.push_back(' ');
        pendingSpace = false;
        out.push_back(c);
    }
    return out;
}

}  // namespace

CodePoints cleanForCLIP(std::string_view text) {
    CodePoints s = fixTextLikeFtfy(*decodeUtf8(text, false));
    s = pythonHtmlUnescape(pythonHtmlUnescape(s));
    s = collapseWhitespace(s);
    if (isAscii(s)) {
        for (char32_t& c : s) {
            if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        }
        return s;
    }
    return changeCase(s, false);
}

}  // namespace easel::inference::text
