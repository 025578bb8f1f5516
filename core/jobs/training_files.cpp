#include "jobs/training_files.h"

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/random_token.h"

namespace easel::jobs {
namespace {

constexpr const char* kStagingPrefix = ".incoming-";

void writeFile(const std::filesystem::path& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.filename().string());
}

// A rename, or a copy and delete where the two folders are on different file systems.
void moveInto(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::error_code ec;
    std::filesystem::rename(from, to, ec);
    if (!ec) return;
    std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
    std::filesystem::remove_all(from);
}

}  // namespace

void TrainingFiles::createFolders() const {
    std::filesystem::create_directories(m_trainingDir);
    std::filesystem::create_directories(m_modelsDir);
}

std::filesystem::path TrainingFiles::workDir(std::int64_t jobId) const { return m_trainingDir / std::to_string(jobId); }

std::vector<TrainingImage> TrainingFiles::inputs(std::int64_t jobId, int count) const {
    std::vector<TrainingImage> out;
    for (int i = 0; i < count; ++i) {
        std::ifstream in(workDir(jobId) / "inputs" / std::to_string(i), std::ios::binary);
        if (!in) throw std::runtime_error("an input image of the training is no longer stored");
        out.push_back({Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), {}});
    }
    return out;
}

std::filesystem::path TrainingFiles::stageInputs(const std::vector<Bytes>& images) const {
    const auto staged = m_trainingDir / (kStagingPrefix + randomToken());
    std::filesystem::create_directories(staged / "inputs");
    try {
        for (std::size_t i = 0; i < images.size(); ++i) writeFile(staged / "inputs" / std::to_string(i), images[i]);
    } catch (...) {
        discardStaged(staged);
        throw;
    }
    return staged;
}

void TrainingFiles::adoptInputs(const std::filesystem::path& staged, std::int64_t jobId) const {
    std::filesystem::remove_all(workDir(jobId));  // what a crash may have left under this id
    std::filesystem::rename(staged, workDir(jobId));
}

void TrainingFiles::discardStaged(const std::filesystem::path& staged) const {
    std::error_code ec;
    std::filesystem::remove_all(staged, ec);
}

void TrainingFiles::removeWorkDir(std::int64_t jobId) const {
    std::error_code ec;
    std::filesystem::remove_all(workDir(jobId), ec);
}

void TrainingFiles::sweep(const std::function<bool(std::int64_t)>& active) const {
    std::vector<std::filesystem::path> stale;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(m_trainingDir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        const auto name = it->path().filename().string();
        const bool id = !name.empty() && name.size() < 18 && name.find_first_not_of("0123456789") == std::string::npos;
        if (!id || !active(std::stoll(name))) stale.push_back(it->path());
    }
    for (const auto& path : stale) std::filesystem::remove_all(path, ec);
}

void TrainingFiles::install(const std::string& modelId, const TrainedModel& result, std::int64_t ownerId) const {
    const bool lora = result.category == "lora";
    const auto dir = m_modelsDir / modelId;
    // Assembled beside and renamed at once: ModelRegistry::addInstalled skips ".partial" folders.
    const auto partial = m_modelsDir / (modelId + ".partial");
    std::filesystem::remove_all(partial);
    std::filesystem::create_directories(partial);
    const std::string file = lora ? modelId + ".safetensors" : "model";
    moveInto(result.path, partial / file);
    std::ofstream(partial / "easel-model.json")
        << nlohmann::json{{"model_category", result.category}, {"file", file}, {"owner_id", ownerId}}.dump();
    std::filesystem::remove_all(dir);
    std::filesystem::rename(partial, dir);
    try {
        if (lora) {
            m_generator.addAdapter(modelId, dir / file, "lora", ownerId);
        } else {
            m_generator.addModel(modelId, dir / file, ownerId);
        }
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        throw;
    }
}

void TrainingFiles::uninstall(const std::string& modelId) const {
    // Ids are the service's own ("ft-" and letters), but a damaged row must not name a path.
    if (modelId.empty() || modelId.front() == '.' || modelId.find_first_of("/\\") != std::string::npos) return;
    m_generator.removeModel(modelId);
    std::error_code ec;
    std::filesystem::remove_all(m_modelsDir / modelId, ec);
    std::filesystem::remove_all(m_modelsDir / (modelId + ".partial"), ec);
}

}  // namespace easel::jobs
