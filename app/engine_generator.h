#pragma once
// jobs::ImageGenerator over inference::Engine: the one place where the backend meets libtorch's world
// (through the Engine's torch-free header).

#include <mutex>

#include "inference/engine.h"
#include "jobs/image_generator.h"

namespace easel::app {

class EngineGenerator final : public jobs::ImageGenerator {
public:
    explicit EngineGenerator(inference::Engine& engine) : m_engine(engine) {}

    std::vector<jobs::ModelDescription> models() const override;
    std::optional<jobs::ModelDescription> defaultModel() const override;
    jobs::GeneratedImages generate(const jobs::GenerationParams& params, const jobs::Bytes* initImage,
                                   const jobs::Bytes* maskImage, const jobs::ProgressCallback& progress) override;

private:
    inference::Engine& m_engine;
    std::mutex m_mutex;  // one generation at a time per engine
};

}  // namespace easel::app
