#pragma once
// multipart/form-data request bodies (RFC 7578), which OpenAI's image edit and variation endpoints take.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace easel::server {

struct FormPart {
    std::string name;         // Content-Disposition's name
    std::string filename;     // empty for plain fields
    std::string contentType;  // the part's Content-Type, empty when absent
    std::string body;
};

// True when `contentType` is multipart/form-data (any parameters).
bool isMultipartForm(std::string_view contentType);

// The parts of a multipart/form-data body, in order. Throws ServiceError (400) naming what is wrong:
// no boundary, a missing closing delimiter, a part without a name, more than `maxParts` parts.
std::vector<FormPart> parseMultipartForm(std::string_view contentType, std::string_view body,
                                         std::size_t maxParts = 32);

}  // namespace easel::server
