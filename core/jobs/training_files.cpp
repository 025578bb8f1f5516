#include "jobs/training_files.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/random_token.h"
#include "storage/model_install_repository.h"

namespace easel::jobs {
namespace {

constexpr const char* kStagingPrefix = ".incoming-";

void writeFile(const std::filesystem::path& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.filename().string());
}

Bytes readFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.filename().string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
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

std::vector<std::string> TrainingFiles::putInputBlobs(std::int64_t owner, const std::vector<Bytes>& images) const {
    if (!shared()) throw std::logic_error("no shared blob store");
    const auto prefix = "training-" + randomToken() + "-";
    std::vector<std::string> names;
    try {
        for (std::size_t i = 0; i < images.size(); ++i) {
            names.push_back(prefix + std::to_string(i));
            m_sharedBlobs->put(owner, names.back(), images[i]);
        }
    } catch (...) {
        removeBlobs(owner, names);
        throw;
    }
    return names;
}

void TrainingFiles::fetchInputBlobs(std::int64_t jobId, std::int64_t owner,
                                    const std::vector<std::string>& names) const {
    if (names.empty()) return;
    if (!shared()) throw std::runtime_error("the training's images are in a blob store this server does not use");
    const auto inputs = workDir(jobId) / "inputs";
    std::filesystem::create_directories(inputs);
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto target = inputs / std::to_string(i);
        if (std::filesystem::exists(target)) continue;
        const auto bytes = m_sharedBlobs->get(owner, names[i]);
        if (!bytes) throw std::runtime_error("an input image of the training is no longer stored");
        // Written beside and renamed: a crash mid-write leaves no truncated input for the next attempt.
        const auto partial = inputs / (std::to_string(i) + ".partial");
        writeFile(partial, *bytes);
        std::filesystem::rename(partial, target);
    }
}

void TrainingFiles::removeBlobs(std::int64_t owner, const std::vector<std::string>& names) const {
    if (!shared()) return;
    for (const auto& name : names) {
        try {
            m_sharedBlobs->remove(owner, name);
        } catch (const std::exception& e) {
            std::cerr << "easel: removing a training blob: " << e.what() << '\n';
        }
    }
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

std::int64_t TrainingFiles::publish(const std::string& modelId, std::int64_t ownerId, int attempt) const {
    if (!shared()) return 0;
    const auto dir = m_modelsDir / modelId;
    // Every file of the installed folder, its easel-model.json included (each server writes its own
    // easel-version).
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        auto relative = std::filesystem::relative(entry.path(), dir);
        if (relative != "easel-version") files.push_back(std::move(relative));
    }
    std::sort(files.begin(), files.end());
    nlohmann::json blobFiles = nlohmann::json::object();
    std::vector<std::string> names;
    try {
        for (const auto& file : files) {
            names.push_back("model-" + modelId + "-a" + std::to_string(attempt) + "-" + std::to_string(names.size()));
            m_sharedBlobs->put(ownerId, names.back(), readFile(dir / file));
            blobFiles[file.generic_string()] = names.back();
        }
        const auto marker = nlohmann::json::parse(readFile(dir / "easel-model.json"));
        // The keys of models::ModelInstaller's recorded source.
        const nlohmann::json source{{"model_id", modelId},
                                    {"model_category", marker.value("model_category", "stable_diffusion")},
                                    {"owner_id", ownerId},
                                    {"blob_files", blobFiles}};
        const auto version =
            storage::ModelInstallRepository(*m_sharedDb)
                .request(modelId, source.dump(), ownerId, static_cast<std::int64_t>(std::time(nullptr)));
        std::ofstream(dir / "easel-version") << version;
        return version;
    } catch (...) {
        removeBlobs(ownerId, names);
        throw;
    }
}

namespace {

// Ids are the service's own ("ft-" and letters), but a damaged row must not name a path.
bool safeModelId(const std::string& modelId) {
    return !modelId.empty() && modelId.front() != '.' && modelId.find_first_of("/\\") == std::string::npos;
}

}  // namespace

void TrainingFiles::uninstallHere(const std::string& modelId) const {
    m_generator.removeModel(modelId);
    std::error_code ec;
    std::filesystem::remove_all(m_modelsDir / modelId, ec);
    std::filesystem::remove_all(m_modelsDir / (modelId + ".partial"), ec);
}

void TrainingFiles::unpublish(const std::string& modelId, std::optional<std::int64_t> version) const {
    // Every server removes its copy at its next sync; the published files go.
    const storage::ModelInstallRepository installs(*m_sharedDb);
    const auto row = installs.find(modelId);
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    if (!row || !(version ? installs.markRemoved(modelId, *version, now) : installs.markRemoved(modelId, now))) return;
    removeBlobs(row->ownerId, publishedBlobs(row->source));
}

void TrainingFiles::uninstallRun(const std::string& modelId, std::int64_t publishedVersion) const {
    if (!safeModelId(modelId)) return;
    uninstallHere(modelId);
    if (shared() && publishedVersion != 0) unpublish(modelId, publishedVersion);
}

void TrainingFiles::uninstall(const std::string& modelId) const {
    if (!safeModelId(modelId)) return;
    uninstallHere(modelId);
    if (shared()) unpublish(modelId, std::nullopt);
}

std::vector<std::string> publishedBlobs(const std::string& installSource) {
    const auto source = nlohmann::json::parse(installSource, nullptr, false);
    std::vector<std::string> names;
    if (!source.is_object()) return names;  // a damaged record: its blobs are left to the orphan sweep
    const auto files = source.find("blob_files");
    if (files == source.end() || !files->is_object()) return names;
    for (const auto& [file, name] : files->items()) {
        if (name.is_string()) names.push_back(name.get<std::string>());
    }
    return names;
}

}  // namespace easel::jobs
