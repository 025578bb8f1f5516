#include "models/model_installer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/service_error.h"
#include "storage/model_install_repository.h"

namespace easel::models {
namespace {

bool safeName(const std::string& s) {
    if (s.empty() || s.size() > 100 || s.front() == '.') return false;
    return s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
           std::string::npos;
}

// A relative path inside a model folder: no absolute path, no "..", no hidden or empty segment.
bool safeRelativePath(const std::string& path) {
    if (path.empty() || path.size() > 200) return false;
    std::size_t start = 0;
    for (;;) {
        const auto slash = path.find('/', start);
        if (!safeName(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start))) return false;
        if (slash == std::string::npos) return true;
        start = slash + 1;
    }
}

// What a published model's easel-model.json names as its model (a file or folder in it).
std::string publishedModelFile(const std::filesystem::path& dir) {
    std::ifstream in(dir / "easel-model.json");
    const auto j = nlohmann::json::parse(in, nullptr, false);
    const auto file = j.is_object() ? j.value("file", std::string()) : std::string();
    if (!safeName(file)) throw std::runtime_error("the published model names no file to load");
    return file;
}

bool isPickle(const std::string& name) {
    for (const auto* ext : {".ckpt", ".pt", ".pth", ".bin", ".pkl"}) {
        if (name.ends_with(ext)) return true;
    }
    return false;
}

std::string lastSegment(const std::string& s) {
    auto q = s.substr(0, s.find_first_of("?#"));
    return q.substr(q.rfind('/') + 1);
}

// The diffusers files Easel reads, in the order they are fetched.
const std::vector<std::string>& diffusersFiles() {
    static const std::vector<std::string> kFiles{"model_index.json",         "scheduler/scheduler_config.json",
                                                 "unet/config.json",         "unet/diffusion_pytorch_model.safetensors",
                                                 "vae/config.json",          "vae/diffusion_pytorch_model.safetensors",
                                                 "text_encoder/config.json", "text_encoder/model.safetensors",
                                                 "tokenizer/vocab.json",     "tokenizer/merges.txt"};
    return kFiles;
}

nlohmann::json sourceJson(const ModelSource& s) {
    return {{"model_id", s.modelId},    {"url", s.url},
            {"hf_id", s.hfRepo},        {"path", s.path},
            {"revision", s.revision},   {"model_category", s.category},
            {"owner_id", s.ownerId},    {"max_bytes", s.maxBytes},
            {"blob_files", s.blobFiles}};
}

ModelSource sourceFromJson(const std::string& text) {
    const auto j = nlohmann::json::parse(text);
    ModelSource s;
    s.modelId = j.at("model_id").get<std::string>();
    s.url = j.value("url", "");
    s.hfRepo = j.value("hf_id", "");
    s.path = j.value("path", "");
    s.revision = j.value("revision", "main");
    s.category = j.value("model_category", "stable_diffusion");
    s.ownerId = j.value("owner_id", std::int64_t{0});
    s.maxBytes = j.value("max_bytes", std::uint64_t{0});
    s.blobFiles = j.value("blob_files", std::map<std::string, std::string>{});
    return s;
}

// A recorded install of a model trained on another server (ModelSource::blobFiles).
bool publishedSource(const std::string& text) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    return j.is_object() && j.contains("blob_files") && j["blob_files"].is_object() && !j["blob_files"].empty();
}

// Which shared version a model folder holds (written after it was installed; 0: none).
std::int64_t installedVersion(const std::filesystem::path& finalDir) {
    std::ifstream in(finalDir / "easel-version");
    std::int64_t v = 0;
    return in >> v ? v : 0;
}

// An exclusive lock on a file, released when closed: servers sharing one models dir take turns.
class FileLock {
public:
    FileLock() = default;
    ~FileLock() {
        if (m_fd >= 0) ::close(m_fd);
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    // Tries once; true when held.
    bool tryLock(const std::filesystem::path& path) {
        if (m_fd < 0) m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        return m_fd >= 0 && ::flock(m_fd, LOCK_EX | LOCK_NB) == 0;
    }

private:
    int m_fd = -1;
};

// The time recorded on shared rows (informational: no decision reads it).
std::int64_t wallSeconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

bool inProgress(const std::string& state) { return state == "downloading" || state == "loading"; }

}  // namespace

bool isHubRepoId(const std::string& id) {
    const auto slash = id.find('/');
    return slash != std::string::npos && id.find('/', slash + 1) == std::string::npos &&
           safeName(id.substr(0, slash)) && safeName(id.substr(slash + 1));
}

ModelInstaller::ModelInstaller(ModelInstallOptions options, jobs::ImageGenerator& generator)
    : m_options(std::move(options)), m_generator(generator) {
    std::filesystem::create_directories(m_options.modelsDir);
    if (m_options.sharedDb != nullptr && m_options.installsHere) m_sync = std::thread([this] { syncLoop(); });
}

ModelInstaller::~ModelInstaller() {
    cancel();
    join();
}

void ModelInstaller::cancel() {
    m_cancel->store(true);
    {
        std::lock_guard lock(m_mutex);
        m_syncStop = true;
    }
    m_syncWake.notify_all();
}

void ModelInstaller::join() {
    if (m_sync.joinable() && m_sync.get_id() != std::this_thread::get_id()) {
        bool stopping = false;
        {
            std::lock_guard lock(m_mutex);
            stopping = m_syncStop;
        }
        if (stopping) m_sync.join();  // else it keeps running: join() only waits for installs
    }
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(m_mutex);
        threads.swap(m_threads);
    }
    for (auto& t : threads) t.join();
}

void ModelInstaller::setStatus(const std::string& id, InstallStatus s) {
    {
        std::lock_guard lock(m_mutex);
        auto& slot = m_status[id];
        s.ownerId = slot.ownerId;  // set once, by start()
        slot = s;
    }
    report(id, s);
}

void ModelInstaller::report(const std::string& id, const InstallStatus& s) {
    if (m_options.sharedDb == nullptr || !m_options.installsHere) return;
    std::int64_t version = 0;
    {
        std::lock_guard lock(m_mutex);
        const auto it = m_applied.find(id);
        if (it == m_applied.end() || it->second.version == 0) return;
        version = it->second.version;
        // A new state at once, progress within one at most every second.
        const auto now = std::chrono::steady_clock::now();
        auto& last = m_reported[id];
        if (last.first == s.state && now - last.second < std::chrono::seconds(1)) return;
        last = {s.state, now};
    }
    try {
        storage::ModelInstallRepository(*m_options.sharedDb)
            .report({id, m_options.workerId, version, s.state, static_cast<std::int64_t>(s.bytesDone),
                     static_cast<std::int64_t>(s.bytesTotal), s.message, wallSeconds()});
    } catch (const std::exception& e) {
        std::cerr << "easel: reporting the install of " << id << ": " << e.what() << '\n';
    }
}

std::optional<InstallStatus> ModelInstaller::status(const std::string& modelId) const {
    {
        std::lock_guard lock(m_mutex);
        const auto it = m_status.find(modelId);
        if (it != m_status.end()) return it->second;
    }
    if (m_options.sharedDb != nullptr) return sharedStatus(modelId);
    return std::nullopt;
}

std::optional<InstallStatus> ModelInstaller::sharedStatus(const std::string& modelId) const {
    const storage::ModelInstallRepository repo(*m_options.sharedDb);
    const auto row = repo.find(modelId);
    if (!row || row->removed) return std::nullopt;
    const auto states = repo.statesOf(modelId, row->version);
    InstallStatus out{modelId, "downloading", 0, 0, 0, "waiting for a worker to start it", row->ownerId};
    const storage::ModelInstallStateRow* ready = nullptr;
    const storage::ModelInstallStateRow* running = nullptr;
    const storage::ModelInstallStateRow* failed = nullptr;
    for (const auto& st : states) {
        if (st.state == "ready" && ready == nullptr) ready = &st;
        if (inProgress(st.state) && (running == nullptr || st.bytesDone < running->bytesDone)) running = &st;
        if (st.state == "failed" && failed == nullptr) failed = &st;
    }
    const auto of = " on " + std::to_string(states.size()) + " server" + (states.size() == 1 ? "" : "s");
    if (ready != nullptr) {
        out.state = "ready";
        out.message = ready->message;
    } else if (running != nullptr) {  // the one furthest behind
        out.state = running->state;
        out.bytesDone = static_cast<std::uint64_t>(running->bytesDone);
        out.bytesTotal = static_cast<std::uint64_t>(running->bytesTotal);
        out.message = running->message + of;
    } else if (failed != nullptr) {
        out.state = "failed";
        out.message = failed->message + " (" + failed->workerId + ")";
    }
    return out;
}

InstallStatus ModelInstaller::start(const ModelSource& in) {
    ModelSource s = in;
    const int sources = !s.url.empty() + !s.hfRepo.empty() + !s.path.empty();
    if (sources != 1) {
        throw validationError({{"url", {"give exactly one of url, hf_id (a Hugging Face repo id) or path"}}});
    }
    if (!s.url.empty()) {
        if (s.url.rfind("https://", 0) != 0 && s.url.rfind("http://", 0) != 0) {
            throw validationError({{"url", {"must be an http(s) URL"}}});
        }
        if (isPickle(lastSegment(s.url))) {
            throw validationError({{"url",
                                    {"pickle checkpoints (.ckpt/.pt/.pth/.bin) can run code and are refused; "
                                     "use a .safetensors file"}}});
        }
        if (!lastSegment(s.url).ends_with(".safetensors")) {
            throw validationError({{"url", {"must point to a .safetensors file"}}});
        }
        if (s.modelId.empty()) s.modelId = lastSegment(s.url).substr(0, lastSegment(s.url).size() - 12);
    } else if (!s.hfRepo.empty()) {
        if (!isHubRepoId(s.hfRepo)) throw validationError({{"hf_id", {"must look like owner/name"}}});
        if (s.modelId.empty()) s.modelId = s.hfRepo.substr(s.hfRepo.find('/') + 1);
    } else if (s.modelId.empty()) {
        s.modelId = std::filesystem::path(s.path).stem().string();
    }
    if (!safeName(s.modelId)) {
        throw validationError({{"model_id", {"may hold letters, digits, '.', '_' and '-' (at most 100)"}}});
    }
    if (s.category.empty()) s.category = "stable_diffusion";
    if (s.category != "stable_diffusion" && s.category != "lora" && s.category != "embeddings") {
        throw validationError(
            {{"model_category", {"'" + s.category + "' is not supported; use stable_diffusion, lora or embeddings"}}});
    }
    if (s.ownerId != 0 && !s.path.empty()) {
        throw ServiceError(ErrorCode::Forbidden,
                           "only an admin loads models from a path on the server; give a url "
                           "or hf_id");
    }
    if (s.ownerId != 0 && s.category == "stable_diffusion") {
        throw ServiceError(ErrorCode::Forbidden,
                           "only an admin loads Stable Diffusion checkpoints; an account may load its own LoRAs "
                           "(model_category \"lora\") and embeddings (\"embeddings\")");
    }
    if (s.category != "stable_diffusion" && !s.path.empty() && isPickle(s.path)) {
        throw validationError({{"path", {"pickle files (.ckpt/.pt/.pth/.bin) can run code and are refused"}}});
    }
    const auto alreadyInstalling = [&] {
        return ServiceError(ErrorCode::Conflict, "model '" + s.modelId + "' is already being installed");
    };
    if (!m_options.installsHere && m_options.sharedDb != nullptr) {
        const storage::ModelInstallRepository repo(*m_options.sharedDb);
        if (const auto row = repo.find(s.modelId); row && !row->removed) {
            for (const auto& st : repo.statesOf(s.modelId, row->version)) {
                if (inProgress(st.state)) throw alreadyInstalling();
            }
        }
    }
    std::lock_guard lock(m_mutex);
    const auto it = m_status.find(s.modelId);
    if (it != m_status.end() && inProgress(it->second.state)) throw alreadyInstalling();
    if (s.ownerId != 0) checkOwnLoad(s);
    std::erase(m_purgedOwners, s.ownerId);
    std::int64_t version = 0;
    if (m_options.sharedDb != nullptr) {
        // Recorded for every server: the others install it at their next sync.
        version = storage::ModelInstallRepository(*m_options.sharedDb)
                      .request(s.modelId, sourceJson(s).dump(), s.ownerId, wallSeconds());
    }
    if (!m_options.installsHere) {
        return {s.modelId, "downloading", 0, 0, 0, "queued: every worker downloads and loads it", s.ownerId};
    }
    m_applied[s.modelId] = {version, false};
    launch(s, version);
    return m_status[s.modelId];
}

void ModelInstaller::launch(const ModelSource& s, std::int64_t version) {
    m_status[s.modelId] = {s.modelId, "downloading", 0, 0, 0, "starting", s.ownerId};
    m_reported.erase(s.modelId);
    m_threads.emplace_back([this, s, version] { run(s, version); });
}

void ModelInstaller::syncLoop() {
    std::unique_lock lock(m_mutex);
    while (!m_syncStop) {
        lock.unlock();
        try {
            syncNow();
        } catch (const std::exception& e) {
            std::cerr << "easel: looking for models loaded on other servers: " << e.what() << '\n';
        }
        lock.lock();
        m_syncWake.wait_for(lock, m_options.syncEvery, [&] { return m_syncStop; });
    }
}

void ModelInstaller::syncNow() {
    if (m_options.sharedDb == nullptr || !m_options.installsHere) return;
    for (const auto& row : storage::ModelInstallRepository(*m_options.sharedDb).all()) {
        if (!safeName(row.modelId)) continue;
        bool removeIt = false;
        bool haveIt = false;  // already loaded here: reported ready, not fetched again
        {
            std::lock_guard lock(m_mutex);
            if (m_syncStop) return;
            const auto applied = m_applied.find(row.modelId);
            const Applied seen = applied == m_applied.end() ? Applied{} : applied->second;
            if (seen.version == row.version && seen.removed == row.removed) continue;
            if (row.removed) {
                m_applied[row.modelId] = {row.version, true};
                removeIt = true;
            } else {
                const auto st = m_status.find(row.modelId);
                if (st != m_status.end() && inProgress(st->second.state)) continue;  // this server's own load
                m_applied[row.modelId] = {row.version, false};
                const auto loaded = [&] {
                    const auto all = m_generator.models();
                    return std::any_of(all.begin(), all.end(), [&](const auto& m) { return m.id == row.modelId; });
                };
                // A published trained model that this server has (its home, which trained it, or any server
                // after a restart), or a load installed before this process started (the folder says which
                // version) and loaded at start. (A folder another server sharing the data dir wrote is loaded
                // below, not fetched.)
                haveIt = st == m_status.end() &&
                         (publishedSource(row.source) ||
                          installedVersion(m_options.modelsDir / row.modelId) == row.version) &&
                         loaded();
                if (!haveIt) {
                    try {
                        auto source = sourceFromJson(row.source);
                        source.modelId = row.modelId;
                        source.ownerId = row.ownerId;
                        launch(source, row.version);
                    } catch (const std::exception& e) {
                        m_status[row.modelId] = {
                            row.modelId, "failed", 0,
                            0,           0,        std::string("the recorded load is not understood: ") + e.what(),
                            row.ownerId};
                    }
                }
            }
        }
        if (removeIt) removeHere(row.modelId);
        // The other servers (an API server's verify_model and its count of an account's loads) see it.
        if (haveIt) report(row.modelId, {row.modelId, "ready", 0, 0, 0, "loaded", row.ownerId});
    }
}

void ModelInstaller::checkOwnLoad(const ModelSource& s) const {
    const auto taken = [&] {
        return ServiceError(ErrorCode::Conflict, "the model id '" + s.modelId + "' is taken; choose another model_id");
    };
    int kept = 0;
    bool own = false;  // a re-load of the account's own adapter replaces it
    const auto loaded = m_generator.models();
    for (const auto& m : loaded) {
        if (m.id == s.modelId) {
            if (m.ownerId != s.ownerId) throw taken();
            own = true;
        } else if (m.ownerId == s.ownerId) {
            ++kept;
        }
    }
    // A folder of that name that is not the account's model (an admin's model that failed to load, say).
    if (!own && std::filesystem::exists(m_options.modelsDir / s.modelId)) throw taken();
    int running = 0;
    for (const auto& [id, st] : m_status) {
        if (st.state != "downloading" && st.state != "loading") continue;
        if (st.ownerId != s.ownerId) {
            if (id == s.modelId) throw taken();
            continue;
        }
        ++running;
        ++kept;
    }
    if (m_options.sharedDb != nullptr) {
        // Several servers: the account's loads taken by any server that no server has finished yet (an
        // API server installs nothing itself, so its own count above is always 0).
        const storage::ModelInstallRepository repo(*m_options.sharedDb);
        for (const auto& row : repo.loadsOf(s.ownerId)) {
            if (row.modelId == s.modelId) continue;
            if (const auto here = m_status.find(row.modelId); here != m_status.end()) continue;  // counted above
            const auto states = repo.statesOf(row.modelId, row.version);
            const bool finished = std::any_of(states.begin(), states.end(), [](const auto& st) {
                return st.state == "ready" || st.state == "failed";
            });
            if (finished) continue;
            ++running;
            // Kept already when an older version is loaded.
            if (std::none_of(loaded.begin(), loaded.end(), [&](const auto& m) { return m.id == row.modelId; })) ++kept;
        }
    }
    if (running >= m_options.maxInstallsPerAccount) {
        ServiceError e(ErrorCode::TooManyRequests, "this account is already loading " + std::to_string(running) +
                                                       " models; wait for them to finish (verify_model)");
        e.retryAfterSeconds = 30;
        throw e;
    }
    if (kept >= m_options.maxAdaptersPerAccount) {
        throw ServiceError(ErrorCode::Conflict,
                           "an account keeps at most " + std::to_string(m_options.maxAdaptersPerAccount) +
                               " LoRAs and embeddings; delete one first (POST /api/v1/models/delete)");
    }
}

void ModelInstaller::download(const std::string& modelId, const std::string& url, const std::filesystem::path& target,
                              std::uint64_t maxBytes) {
    std::filesystem::create_directories(target.parent_path());
    std::error_code ec;
    std::uint64_t have = std::filesystem::exists(target) ? std::filesystem::file_size(target, ec) : 0;
    net::OutboundRequest get;
    get.url = url;
    get.timeout = std::chrono::hours(6);
    // A stalled mirror fails the install after a minute of silence instead of holding it for hours.
    get.idleTimeout = std::chrono::seconds(60);
    get.cancelled = m_cancel;
    get.maxBody = maxBytes;
    if (have > 0) get.headers["Range"] = "bytes=" + std::to_string(have) + "-";
    std::ofstream out;
    std::uint64_t total = 0, fresh = 0;
    const auto t0 = std::chrono::steady_clock::now();
    get.onHeaders = [&](int status, const std::map<std::string, std::string>& headers) {
        auto header = [&](const char* name) {
            const auto it = headers.find(name);
            return it == headers.end() ? std::string() : it->second;
        };
        if (status == 206) {  // resuming: "Content-Range: bytes START-END/TOTAL"
            const auto cr = header("content-range");
            const auto dash = cr.find('-'), slash = cr.find('/');
            if (cr.rfind("bytes ", 0) != 0 || dash == std::string::npos || slash == std::string::npos ||
                std::stoull(cr.substr(6, dash - 6)) != have) {
                throw net::OutboundError(url + " answered a resumed download with a wrong range");
            }
            if (cr.substr(slash + 1) != "*") total = std::stoull(cr.substr(slash + 1));
            out.open(target, std::ios::binary | std::ios::app);
        } else if (status == 200) {  // the whole file (no resume, or the server ignores Range)
            have = 0;
            if (!header("content-length").empty()) total = std::stoull(header("content-length"));
            out.open(target, std::ios::binary | std::ios::trunc);
        }
    };
    get.sink = [&](std::string_view chunk) {
        out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        fresh += chunk.size();
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        InstallStatus st{modelId, "downloading", have + fresh, total, 0, url};
        if (total > have + fresh)
            st.etaSeconds = elapsed / static_cast<double>(fresh) * static_cast<double>(total - have - fresh);
        setStatus(modelId, st);
        return static_cast<bool>(out);
    };
    const auto res = net::httpFetch(get, m_options.policy);
    out.close();
    if (res.status == 416 && have > 0) {
        // Nothing left to fetch, or the partial file is longer than the remote one: start over once.
        const auto cr = res.headers.contains("content-range") ? res.headers.at("content-range") : std::string();
        if (cr == "bytes */" + std::to_string(have)) return;
        std::filesystem::remove(target);
        return download(modelId, url, target, maxBytes);
    }
    if (res.status == 404) throw net::OutboundError(url + " was not found (404)");
    if (res.status != 200 && res.status != 206) {
        throw net::OutboundError(url + " answered HTTP " + std::to_string(res.status));
    }
    const auto size = std::filesystem::file_size(target);
    if (total > 0 && size != total) {
        throw net::OutboundError("the download of " + url + " stopped at " + std::to_string(size) + " of " +
                                 std::to_string(total) + " bytes; load it again to resume");
    }
}

void ModelInstaller::run(ModelSource s, std::int64_t version) {
    const auto finalDir = m_options.modelsDir / s.modelId;
    const auto partial = m_options.modelsDir / (s.modelId + ".partial");
    try {
        std::filesystem::path modelPath;
        const bool adapter = s.category != "stable_diffusion";
        const std::uint64_t maxBytes =
            s.maxBytes > 0 ? std::min(s.maxBytes, m_options.maxDownloadBytes) : m_options.maxDownloadBytes;
        // An adapter is one file, kept under the id's name: an embedding's trigger word is its id.
        const std::string adapterFile = s.modelId + ".safetensors";
        // Several servers: one at a time per models dir, and one that finds the version it was asked for
        // already there (another server sharing the data dir wrote it) just loads it.
        FileLock turn;
        if (m_options.sharedDb != nullptr) {
            bool said = false;
            while (!turn.tryLock(m_options.modelsDir / (s.modelId + ".lock"))) {
                if (m_cancel->load()) throw std::runtime_error("the server is stopping");
                if (!std::exchange(said, true)) {
                    setStatus(s.modelId, {s.modelId, "downloading", 0, 0, 0, "another server is installing it here"});
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        }
        const bool there = version > 0 && s.path.empty() && installedVersion(finalDir) == version;
        const bool published = !s.blobFiles.empty();
        if (published) {
            if (!there) {
                if (m_options.blobs == nullptr)
                    throw std::runtime_error("it was trained on another server and this one has no shared blob store");
                std::filesystem::remove_all(partial);
                for (const auto& [file, blob] : s.blobFiles) {
                    if (!safeRelativePath(file)) throw std::runtime_error("the published model names a bad path");
                    setStatus(s.modelId, {s.modelId, "downloading", 0, 0, 0, "copying it from the blob store"});
                    const auto bytes = m_options.blobs->get(s.ownerId, blob);
                    if (!bytes) throw std::runtime_error("a file of the trained model is no longer stored");
                    const auto target = partial / file;
                    std::filesystem::create_directories(target.parent_path());
                    std::ofstream out(target, std::ios::binary | std::ios::trunc);
                    out.write(reinterpret_cast<const char*>(bytes->data()),
                              static_cast<std::streamsize>(bytes->size()));
                    if (!out.flush()) throw std::runtime_error("cannot write the trained model's files");
                }
            }
            modelPath = finalDir / publishedModelFile(there ? finalDir : partial);
        } else if (there) {
            modelPath = adapter                                                  ? finalDir / adapterFile
                        : std::filesystem::exists(finalDir / "model_index.json") ? finalDir
                                                                                 : finalDir / "model.safetensors";
        } else if (!s.path.empty()) {
            modelPath = s.path;
        } else if (!s.url.empty()) {
            const std::string file = adapter ? adapterFile : "model.safetensors";
            download(s.modelId, s.url, partial / file, maxBytes);
            modelPath = finalDir / file;
        } else {
            net::OutboundRequest info;
            info.cancelled = m_cancel;
            info.url = m_options.hubUrl + "/api/models/" + s.hfRepo +
                       (s.revision == "main" ? std::string() : "/revision/" + s.revision);
            const auto meta = net::httpFetch(info, m_options.policy);
            if (meta.status == 404 || meta.status == 401) {
                throw net::OutboundError("the hub has no public repository " + s.hfRepo);
            }
            const auto j = nlohmann::json::parse(meta.body, nullptr, false);
            if (meta.status != 200 || j.is_discarded() || !j.contains("siblings")) {
                throw net::OutboundError("the hub's answer for " + s.hfRepo + " was not understood (HTTP " +
                                         std::to_string(meta.status) + ")");
            }
            std::vector<std::string> files;
            for (const auto& f : j["siblings"]) files.push_back(f.value("rfilename", ""));
            auto has = [&](const std::string& f) { return std::find(files.begin(), files.end(), f) != files.end(); };
            const std::string base = m_options.hubUrl + "/" + s.hfRepo + "/resolve/" + s.revision + "/";
            if (adapter) {
                // diffusers' names first (save_lora_weights, textual-inversion training), else the only
                // .safetensors at the top level.
                const std::string preferred =
                    s.category == "lora" ? "pytorch_lora_weights.safetensors" : "learned_embeds.safetensors";
                std::string pick = has(preferred) ? preferred : std::string();
                int candidates = 0;
                for (const auto& f : files) {
                    if (f.find('/') != std::string::npos || !f.ends_with(".safetensors")) continue;
                    ++candidates;
                    if (pick.empty()) pick = f;
                }
                if (pick.empty()) throw net::OutboundError(s.hfRepo + " has no .safetensors file at its top level");
                if (!has(preferred) && candidates > 1) {
                    throw net::OutboundError(s.hfRepo +
                                             " has several .safetensors files; load the one you want by URL");
                }
                download(s.modelId, base + pick, partial / adapterFile, maxBytes);
                modelPath = finalDir / adapterFile;
            } else if (has("model_index.json")) {
                if (!has("unet/diffusion_pytorch_model.safetensors")) {
                    throw net::OutboundError(s.hfRepo + " has no safetensors weights (pickles are refused)");
                }
                for (const auto& f : diffusersFiles()) {
                    if (has(f)) download(s.modelId, base + f, partial / f, maxBytes);
                }
                modelPath = finalDir;
            } else {
                std::string pick;
                for (const auto& f : files) {
                    if (f.find('/') != std::string::npos || !f.ends_with(".safetensors")) continue;
                    if (pick.empty() || f.find("emaonly") != std::string::npos) pick = f;
                }
                if (pick.empty())
                    throw net::OutboundError(s.hfRepo + " has no .safetensors checkpoint at its top level");
                download(s.modelId, base + pick, partial / "model.safetensors", maxBytes);
                modelPath = finalDir / "model.safetensors";
            }
        }
        if (adapter && s.path.empty() && !there && !published) {
            // Tells addInstalled() what the folder holds after a restart.
            std::ofstream(partial / "easel-model.json") << nlohmann::json{
                {"model_category", s.category},
                {"file", adapterFile},
                {"owner_id", s.ownerId}}.dump();
        }
        if (s.ownerId != 0) {
            std::lock_guard lock(m_mutex);
            if (std::find(m_purgedOwners.begin(), m_purgedOwners.end(), s.ownerId) != m_purgedOwners.end()) {
                std::filesystem::remove_all(partial);
                throw std::runtime_error("the account was deleted");
            }
        }
        if (s.path.empty() && !there) {
            std::filesystem::remove_all(finalDir);
            std::filesystem::rename(partial, finalDir);
            if (version > 0) std::ofstream(finalDir / "easel-version") << version;
        }
        setStatus(s.modelId, {s.modelId, "loading", 0, 0, 0, "checking the weights"});
        // A trained model is its owner's own; an admin's load is everyone's.
        const auto model = adapter     ? m_generator.addAdapter(s.modelId, modelPath, s.category, s.ownerId)
                           : published ? m_generator.addModel(s.modelId, modelPath, s.ownerId)
                                       : m_generator.addModel(s.modelId, modelPath);
        setStatus(s.modelId, {s.modelId, "ready", 0, 0, 0, model.description});
    } catch (const std::exception& e) {
        if (s.ownerId != 0 && s.path.empty()) {
            // An account's failed load leaves nothing behind: its files would count against no one.
            std::error_code ec;
            std::filesystem::remove_all(partial, ec);
        }
        setStatus(s.modelId, {s.modelId, "failed", 0, 0, 0, e.what()});
    }
}

bool ModelInstaller::remove(const std::string& modelId) {
    if (!safeName(modelId)) return false;
    bool recorded = false;
    if (m_options.sharedDb != nullptr) {  // every server removes its copy at its next sync
        recorded = storage::ModelInstallRepository(*m_options.sharedDb).markRemoved(modelId, wallSeconds());
    }
    if (!m_options.installsHere) return recorded;
    return removeHere(modelId) || recorded;
}

bool ModelInstaller::removeHere(const std::string& modelId) {
    const bool known = m_generator.removeModel(modelId);
    std::error_code ec;
    const bool files = std::filesystem::remove_all(m_options.modelsDir / modelId, ec) > 0;
    std::filesystem::remove_all(m_options.modelsDir / (modelId + ".partial"), ec);
    {
        std::lock_guard lock(m_mutex);
        m_status.erase(modelId);
        m_reported.erase(modelId);
    }
    return known || files;
}

void ModelInstaller::removeOwnedBy(std::int64_t ownerId) {
    if (ownerId == 0) return;
    if (m_options.sharedDb != nullptr) {
        storage::ModelInstallRepository(*m_options.sharedDb).markRemovedOf(ownerId, wallSeconds());
    }
    {
        std::lock_guard lock(m_mutex);
        m_purgedOwners.push_back(ownerId);
    }
    for (const auto& m : m_generator.models()) {
        if (m.ownerId == ownerId) remove(m.id);
    }
    std::lock_guard lock(m_mutex);
    std::erase_if(m_status, [&](const auto& entry) {
        const auto& st = entry.second;
        return st.ownerId == ownerId && st.state != "downloading" && st.state != "loading";
    });
}

}  // namespace easel::models
