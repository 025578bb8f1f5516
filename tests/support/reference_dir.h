#pragma once
// Where the reference vectors live: $EASEL_REFERENCE_DIR when set (another set of the same format),
// else tests/data/reference inside the checkout, so that a clone with nothing beside it passes.
// A missing file is an error that names it, never a skip: the default set is committed data.

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace easel::testing {

inline std::filesystem::path referenceDir() {
    if (const char* env = std::getenv("EASEL_REFERENCE_DIR"); env != nullptr && *env != '\0') return env;
    return std::filesystem::path(EASEL_SOURCE_DIR) / "tests" / "data" / "reference";
}

// The path of one file (or folder) of the reference set; throws, naming the path, when it is absent.
inline std::filesystem::path referenceFile(const std::filesystem::path& name) {
    const auto path = referenceDir() / name;
    if (!std::filesystem::exists(path)) {
        const bool fromEnv = std::getenv("EASEL_REFERENCE_DIR") != nullptr;
        throw std::runtime_error("missing reference file " + path.string() +
                                 (fromEnv ? " (EASEL_REFERENCE_DIR points at a set without it)"
                                          : " (tests/data/reference is committed data: restore it with git)"));
    }
    return path;
}

}  // namespace easel::testing
