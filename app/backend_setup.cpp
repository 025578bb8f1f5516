#include "app/backend_setup.h"

#include <iostream>

#include "app/generate_command.h"

namespace easel::app {

std::string loadDefaultModel(inference::Engine& engine, const ArgList& args, const char* argv0) {
    const std::filesystem::path modelPath = args.value("--model").value_or(defaultModelPath(argv0).string());
    try {
        engine.loadModel(modelPath);
        std::cout << "model: " << engine.model().name << " (" << engine.model().description << ") from "
                  << modelPath.string() << std::endl;
        return engine.model().name;
    } catch (const std::exception& e) {
        std::cerr << "warning: no default model: " << e.what() << std::endl;
        return {};
    }
}

}  // namespace easel::app
