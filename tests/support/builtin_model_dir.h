#pragma once
// Where the tests find Easel's built-in model: $EASEL_MODELS_DIR/easel-shapes-64 when set (to try a
// freshly trained one), otherwise the committed resources/models/easel-shapes-64.

#include <cstdlib>
#include <filesystem>

namespace easel::testing {

inline std::filesystem::path builtinModelDir() {
    if (const char* env = std::getenv("EASEL_MODELS_DIR"); env != nullptr && *env != '\0')
        return std::filesystem::path(env) / "easel-shapes-64";
    return std::filesystem::path(EASEL_SOURCE_DIR) / "resources" / "models" / "easel-shapes-64";
}

}  // namespace easel::testing
