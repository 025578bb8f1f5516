#pragma once
// `easel-server generate ...`: one-shot generation from the command line.

#include <filesystem>

#include "app/app_args.h"

namespace easel::app {

// Where the built-in model lives: $EASEL_MODELS_DIR, next to an installed binary, or the source tree.
std::filesystem::path defaultModelPath(const char* argv0);

int runGenerate(const ArgList& args, const char* argv0);

}  // namespace easel::app
