#pragma once
// Where the shared reference vectors live: $EASEL_REFERENCE_DIR, else ../shared/reference next to
// the checkout (the source tree's parent), as the brief lays it out.

#include <cstdlib>
#include <filesystem>

namespace easel::testing {

inline std::filesystem::path referenceDir() {
    if (const char* env = std::getenv("EASEL_REFERENCE_DIR"); env != nullptr && *env != '\0') return env;
    return std::filesystem::path(EASEL_SOURCE_DIR).parent_path() / "shared" / "reference";
}

}  // namespace easel::testing
