#include "server/multipart.h"

#include <cctype>

#include "common/service_error.h"

namespace easel::server {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

[[noreturn]] void bad(const std::string& what) {
    throw ServiceError(ErrorCode::BadRequest, "the multipart/form-data body is malformed: " + what);
}

// The value of parameter `name` in a header value such as `form-data; name="image"; filename="a.png"`
// (quoted or not; a backslash escapes the next character inside quotes). Empty when absent.
std::string headerParameter(std::string_view value, std::string_view name) {
    std::size_t i = value.find(';');
    while (i != std::string_view::npos && i < value.size()) {
        ++i;
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
        const auto eq = value.find('=', i);
        if (eq == std::string_view::npos) return {};
        const auto key = lower(trim(value.substr(i, eq - i)));
        std::string result;
        std::size_t j = eq + 1;
        if (j < value.size() && value[j] == '"') {
            for (++j; j < value.size() && value[j] != '"'; ++j) {
                if (value[j] == '\\' && j + 1 < value.size()) ++j;
                result += value[j];
            }
            if (j < value.size()) ++j;  // the closing quote
        } else {
            const auto end = value.find(';', j);
            result =
                std::string(trim(value.substr(j, end == std::string_view::npos ? std::string_view::npos : end - j)));
            j = end == std::string_view::npos ? value.size() : end;
        }
        if (key == name) return result;
        i = value.find(';', j);
    }
    return {};
}

}  // namespace

bool isMultipartForm(std::string_view contentType) {
    return lower(trim(contentType.substr(0, contentType.find(';')))) == "multipart/form-data";
}

std::vector<FormPart> parseMultipartForm(std::string_view contentType, std::string_view body, std::size_t maxParts) {
    if (!isMultipartForm(contentType)) bad("the Content-Type is not multipart/form-data");
    const auto boundary = headerParameter(contentType, "boundary");
    if (boundary.empty() || boundary.size() > 200) bad("the Content-Type has no usable boundary");
    const std::string delimiter = "--" + boundary;
    // The first delimiter may follow a preamble; later ones start a line.
    std::size_t pos = body.rfind(delimiter, 0) == 0 ? 0 : body.find("\r\n" + delimiter);
    if (pos == std::string_view::npos) bad("the boundary never occurs");
    pos += body.compare(pos, 2, "\r\n") == 0 ? delimiter.size() + 2 : delimiter.size();
    std::vector<FormPart> parts;
    for (;;) {
        if (body.compare(pos, 2, "--") == 0) return parts;  // the closing delimiter
        // Transport padding (spaces) may follow a delimiter before its line break.
        while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
        if (body.compare(pos, 2, "\r\n") != 0) bad("a delimiter is not followed by a line break");
        pos += 2;
        const auto headersEnd = body.find("\r\n\r\n", pos);
        if (headersEnd == std::string_view::npos) bad("a part's headers never end");
        FormPart part;
        std::string_view headers = body.substr(pos, headersEnd - pos + 2);
        while (!headers.empty()) {
            const auto eol = headers.find("\r\n");
            const auto line = headers.substr(0, eol);
            headers.remove_prefix(eol + 2);
            if (line.empty()) continue;
            const auto colon = line.find(':');
            if (colon == std::string_view::npos) bad("a part's header line has no ':'");
            const auto name = lower(trim(line.substr(0, colon)));
            const auto value = trim(line.substr(colon + 1));
            if (name == "content-disposition") {
                if (lower(trim(value.substr(0, value.find(';')))) != "form-data") {
                    bad("a part's Content-Disposition is not form-data");
                }
                part.name = headerParameter(value, "name");
                part.filename = headerParameter(value, "filename");
            } else if (name == "content-type") {
                part.contentType = std::string(value);
            }
        }
        if (part.name.empty()) bad("a part has no name");
        const auto contentStart = headersEnd + 4;
        const auto next = body.find("\r\n" + delimiter, contentStart);
        if (next == std::string_view::npos) bad("the closing boundary is missing");
        part.body = std::string(body.substr(contentStart, next - contentStart));
        if (parts.size() == maxParts) bad("more than " + std::to_string(maxParts) + " parts");
        parts.push_back(std::move(part));
        pos = next + 2 + delimiter.size();
    }
}

}  // namespace easel::server
