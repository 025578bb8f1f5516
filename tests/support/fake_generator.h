#pragma once
// A jobs::ImageGenerator without a model: solid-colour PNGs of the requested size (the colour comes
// from the seed), with hooks to block, fail and record the order of jobs.

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "common/service_error.h"
#include "inference/image/image.h"
#include "jobs/image_generator.h"

namespace easel::testing {

class FakeGenerator final : public jobs::ImageGenerator {
public:
    std::vector<jobs::ModelDescription> models() const override {
        std::lock_guard lock(m_mutex);
        auto all = m_extra;
        all.insert(all.begin(), model());
        return all;
    }
    std::optional<jobs::ModelDescription> defaultModel() const override { return model(); }

    jobs::GeneratedImages generate(const jobs::GenerationParams& p, const jobs::Bytes* init, const jobs::Bytes* mask,
                                   const jobs::ProgressCallback& progress) override {
        {
            std::unique_lock lock(m_mutex);
            m_started.push_back(p.prompt);
            m_lastParams = p;
            m_lastMask = mask != nullptr ? *mask : jobs::Bytes();
            m_changed.notify_all();
            m_changed.wait(lock, [&] { return !m_blocked; });
        }
        for (int step = 1; step <= p.steps; ++step) {
            jobs::GenerationStep g{step, p.steps, 0, nullptr};
            // A preview at every other step: a grey square whose level is the step, so tests can tell them apart.
            jobs::Bytes preview;
            if (step % 2 == 0) {
                inference::Image img{8, 8, std::vector<std::uint8_t>(8 * 8 * 3, static_cast<std::uint8_t>(step))};
                preview = inference::encodePng(img, {});
                g.previewPng = &preview;
            }
            if (progress && !progress(g)) throw jobs::GenerationCancelledError();
            std::unique_lock lock(m_mutex);
            if (step == m_pauseAtStep) {
                m_pausedAt = step;
                m_changed.notify_all();
                m_changed.wait(lock, [&] { return m_pauseAtStep == 0; });
                m_pausedAt = 0;
            }
        }
        if (p.prompt.find("explode") != std::string::npos) throw std::runtime_error("the model ran out of memory");
        jobs::GeneratedImages out;
        const std::int64_t seed = p.seed.value_or(7);
        for (int i = 0; i < p.samples; ++i) {
            inference::Image img;
            img.width = p.width;
            img.height = p.height;
            img.rgb.assign(static_cast<std::size_t>(p.width * p.height * 3),
                           static_cast<std::uint8_t>((seed + i) % 256));
            if (init != nullptr) img.rgb[0] = 1;  // marks that an init image arrived
            out.pngs.push_back(
                inference::encodePng(img, {{"parameters", p.prompt + "\nSeed: " + std::to_string(seed + i)}}));
        }
        out.meta = {{"prompt", p.prompt}, {"seed", seed}, {"W", p.width}, {"H", p.height}, {"steps", p.steps}};
        ++m_completed;
        return out;
    }

    using jobs::ImageGenerator::addModel;
    jobs::ModelDescription addModel(const std::string& id, const std::filesystem::path& path,
                                    std::int64_t ownerId) override {
        const auto file = std::filesystem::is_directory(path) ? path / "model.safetensors" : path;
        std::ifstream in(file, std::ios::binary);
        if (!in) throw std::runtime_error("no model at " + file.string());
        std::lock_guard lock(m_mutex);
        auto m = model();
        m.id = id;
        m.ownerId = ownerId;
        std::erase_if(m_extra, [&](const auto& x) { return x.id == id; });
        m_extra.push_back(m);
        return m;
    }
    // Any readable file is accepted; a file whose name has "sdxl" in it is made for SDXL, else SD 1.x.
    jobs::ModelDescription addAdapter(const std::string& id, const std::filesystem::path& path,
                                      const std::string& category, std::int64_t ownerId) override {
        if (!std::ifstream(path)) throw std::runtime_error("no file at " + path.string());
        if (category != "lora" && category != "embeddings") throw std::runtime_error("unknown category " + category);
        jobs::ModelDescription m;
        m.id = m.name = id;
        m.category = category;
        m.family = path.filename().string().find("sdxl") != std::string::npos ? "sdxl" : "sd1";
        m.ownerId = ownerId;
        m.fileBytes = std::filesystem::file_size(path);
        std::lock_guard lock(m_mutex);
        std::erase_if(m_extra, [&](const auto& x) { return x.id == id; });
        m_extra.push_back(m);
        return m;
    }
    // The parameters of the last generation that started.
    jobs::GenerationParams lastParams() {
        std::lock_guard lock(m_mutex);
        return m_lastParams;
    }
    // The mask image of the last generation that started (empty: none).
    jobs::Bytes lastMask() {
        std::lock_guard lock(m_mutex);
        return m_lastMask;
    }
    bool removeModel(const std::string& id) override {
        std::lock_guard lock(m_mutex);
        return std::erase_if(m_extra, [&](const auto& m) { return m.id == id; }) > 0;
    }

    std::optional<std::string> checkScheduler(const std::string& name) const override {
        if (name == "DPMSolverMultistepScheduler" || name == "EulerDiscreteScheduler" || name == "Euler a")
            return std::nullopt;
        return "unknown scheduler '" + name + "'";
    }

    void block() {
        std::lock_guard lock(m_mutex);
        m_blocked = true;
    }
    void release() {
        std::lock_guard lock(m_mutex);
        m_blocked = false;
        m_changed.notify_all();
    }
    // Jobs stop right after reporting step `n` (0: never) until resume().
    void pauseAtStep(int n) {
        std::lock_guard lock(m_mutex);
        m_pauseAtStep = n;
    }
    bool waitPaused(std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
        std::unique_lock lock(m_mutex);
        return m_changed.wait_for(lock, timeout, [&] { return m_pausedAt != 0; });
    }
    void resume() {
        std::lock_guard lock(m_mutex);
        m_pauseAtStep = 0;
        m_changed.notify_all();
    }
    // Waits until `n` generations have started.
    bool waitStarted(std::size_t n, std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
        std::unique_lock lock(m_mutex);
        return m_changed.wait_for(lock, timeout, [&] { return m_started.size() >= n; });
    }
    std::vector<std::string> started() {
        std::lock_guard lock(m_mutex);
        return m_started;
    }
    int completed() const { return m_completed.load(); }

private:
    static jobs::ModelDescription model() {
        jobs::ModelDescription m;
        m.id = "fake-model";
        m.name = "Fake";
        m.defaultWidth = 64;
        m.defaultHeight = 64;
        m.defaultSteps = 4;
        m.defaultGuidance = 5.0;
        m.family = "sd1";
        return m;
    }

    mutable std::mutex m_mutex;
    std::vector<jobs::ModelDescription> m_extra;
    jobs::GenerationParams m_lastParams;
    jobs::Bytes m_lastMask;
    std::condition_variable m_changed;
    bool m_blocked = false;
    int m_pauseAtStep = 0;
    int m_pausedAt = 0;
    std::vector<std::string> m_started;
    std::atomic<int> m_completed{0};
};

}  // namespace easel::testing
