#pragma once
// Wiring shared by the two composition roots (easel-server and the desktop app's bundled backend).

#include <filesystem>
#include <string>

#include "app/app_args.h"
#include "inference/engine.h"

namespace easel::app {

// Loads --model or the built-in model into the engine; returns its name, or "" (with a warning on
// stderr) when there is none, so that the server still starts and says so in /health.
std::string loadDefaultModel(inference::Engine& engine, const ArgList& args, const char* argv0);

}  // namespace easel::app
