#pragma once
// A jobs::ModelTrainer without a model: it reports max_train_steps "training" steps with a loss that
// falls (1 / step), then "saving", and writes a small result (DreamBooth: a folder with model.json and
// model.safetensors, which FakeGenerator::addModel accepts; LoRA: a .safetensors file). It keeps a
// checkpoint (the last step) in the work folder and resumes from it, like the real trainer, and records
// where each call resumed. Hooks: pause after a step (until resume()), fail at a step, a delay per step.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "jobs/model_trainer.h"

namespace easel::testing {

class FakeTrainer final : public jobs::ModelTrainer {
public:
    jobs::TrainedModel train(const jobs::TrainingParams& params, const std::vector<jobs::TrainingImage>& images,
                             const std::filesystem::path& workDir, const jobs::TrainingProgress& progress) override {
        std::filesystem::create_directories(workDir);
        const auto checkpoint = workDir / "fake-checkpoint.json";
        int from = 0;
        if (std::ifstream in(checkpoint); in) from = nlohmann::json::parse(in).value("step", 0);
        {
            std::lock_guard lock(m_mutex);
            m_resumedFrom.push_back(from);
            m_lastParams = params;
            m_lastImages = images;
            m_changed.notify_all();
        }
        const int total = params.maxTrainSteps;
        for (int step = from + 1; step <= total; ++step) {
            if (m_stepDelayMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(m_stepDelayMs.load()));
            if (step == m_failAtStep) throw std::runtime_error("the GPU ran out of memory");
            std::ofstream(checkpoint) << nlohmann::json{{"step", step}}.dump();
            if (progress && !progress({"training", step, total, 1.0 / step})) throw jobs::GenerationCancelledError();
            std::unique_lock lock(m_mutex);
            if (step == m_pauseAtStep) {
                m_pausedAt = step;
                m_changed.notify_all();
                m_changed.wait(lock, [&] { return m_pauseAtStep == 0; });
                m_pausedAt = 0;
            }
        }
        if (progress && !progress({"saving", 0, 1, 0})) throw jobs::GenerationCancelledError();
        jobs::TrainedModel out;
        const auto output = workDir / "output";
        std::filesystem::create_directories(output);
        if (params.method == jobs::TrainingMethod::LoRA) {
            out.path = output / "lora.safetensors";
            out.category = "lora";
            std::ofstream(out.path) << "fake lora of " << params.outputName;
        } else {
            out.path = output;
            out.category = "stable_diffusion";
            std::ofstream(output / "model.json") << nlohmann::json{{"name", params.outputName}}.dump();
            std::ofstream(output / "model.safetensors") << "fake weights";
        }
        out.meta = {{"steps", total}, {"resumed_from", from}, {"final_loss", 1.0 / std::max(1, total)}};
        ++m_completed;
        return out;
    }

    // Each call's starting point: 0 for a fresh training, k when it resumed after step k.
    std::vector<int> resumedFrom() const {
        std::lock_guard lock(m_mutex);
        return m_resumedFrom;
    }
    int calls() const { return static_cast<int>(resumedFrom().size()); }
    int completed() const { return m_completed.load(); }
    jobs::TrainingParams lastParams() const {
        std::lock_guard lock(m_mutex);
        return m_lastParams;
    }
    std::vector<jobs::TrainingImage> lastImages() const {
        std::lock_guard lock(m_mutex);
        return m_lastImages;
    }

    // Set before a training starts.
    void setStepDelay(std::chrono::milliseconds d) { m_stepDelayMs = static_cast<int>(d.count()); }
    void failAtStep(int step) { m_failAtStep = step; }
    // Trainings stop right after reporting step `n` (0: never) until resume().
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

private:
    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<int> m_resumedFrom;
    jobs::TrainingParams m_lastParams;
    std::vector<jobs::TrainingImage> m_lastImages;
    std::atomic<int> m_stepDelayMs{0};
    std::atomic<int> m_failAtStep{0};
    int m_pauseAtStep = 0;
    int m_pausedAt = 0;
    std::atomic<int> m_completed{0};
};

}  // namespace easel::testing
