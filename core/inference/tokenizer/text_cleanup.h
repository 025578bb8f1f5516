#pragma once
// The cleanup openai/CLIP's SimpleTokenizer applies before splitting a prompt (ftfy.fix_text,
// html.unescape twice, whitespace collapsed, lower-cased; clip_tokenizer.h lists exactly what is
// covered), and the Unicode helpers the tokenizer's split shares with it. Python's semantics
// throughout: code points, not bytes.

#include <optional>
#include <string>
#include <string_view>

namespace easel::inference::text {

using CodePoints = std::u32string;

// UTF-8 to code points: malformed sequences become U+FFFD, or give nullopt when `strict`.
std::optional<CodePoints> decodeUtf8(std::string_view bytes, bool strict);
std::string encodeUtf8(std::u32string_view text);

// Python's str.isspace(): bidi class WS/B/S or category Zs.
bool isPythonSpace(char32_t c);
// Unicode categories L* and N*, as the reference's \p{L} and \p{N}.
bool isLetter(char32_t c);
bool isNumber(char32_t c);

// The whole cleanup of a prompt, as code points ready for the CLIP split.
CodePoints cleanForCLIP(std::string_view text);

}  // namespace easel::inference::text
