#include "models/model_installer.h"

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/service_error.h"

namespace easel::models {
namespace {

bool safeName(const std::string& s) {
    if (s.empty() || s.size() > 100 || s.front() == '.') return false;
    return s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
           std::string::npos;
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

}  // namespace

bool isHubRepoId(const std::string& id) {
    const auto slash = id.find('/');
    return slash != std::string::npos && id.find('/', slash + 1) == std::string::npos &&
           safeName(id.substr(0, slash)) && safeName(id.substr(slash + 1));
}

ModelInstaller::ModelInstaller(ModelInstallOptions options, jobs::ImageGenerator& generator)
    : m_options(std::move(options)), m_generator(generator) {
    std::filesystem::create_directories(m_options.modelsDir);
}

ModelInstaller::~ModelInstaller() {
    cancel();
    join();
}

void ModelInstaller::cancel() { m_cancel->store(true); }

void ModelInstaller::join() {
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(m_mutex);
        threads.swap(m_threads);
    }
    for (auto& t : threads) t.join();
}

void ModelInstaller::setStatus(const std::string& id, InstallStatus s) {
    std::lock_guard lock(m_mutex);
    auto& slot = m_status[id];
    s.ownerId = slot.ownerId;  // set once, by start()
    slot = std::move(s);
}

std::optional<InstallStatus> ModelInstaller::status(const std::string& modelId) const {
    std::lock_guard lock(m_mutex);
    const auto it = m_status.find(modelId);
    if (it == m_status.end()) return std::nullopt;
    return it->second;
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
    {
        std::lock_guard lock(m_mutex);
        const auto it = m_status.find(s.modelId);
        if (it != m_status.end() && (it->second.state == "downloading" || it->second.state == "loading")) {
            throw ServiceError(ErrorCode::Conflict, "model '" + s.modelId + "' is already being installed");
        }
        if (s.ownerId != 0) checkOwnLoad(s);
        std::erase(m_purgedOwners, s.ownerId);
        m_status[s.modelId] = {s.modelId, "downloading", 0, 0, 0, "starting", s.ownerId};
        m_threads.emplace_back([this, s] { run(s); });
    }
    return *status(s.modelId);
}

void ModelInstaller::checkOwnLoad(const ModelSource& s) const {
    const auto taken = [&] {
        return ServiceError(ErrorCode::Conflict, "the model id '" + s.modelId + "' is taken; choose another model_id");
    };
    int kept = 0;
    bool own = false;  // a re-load of the account's own adapter replaces it
    for (const auto& m : m_generator.models()) {
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

void ModelInstaller::run(ModelSource s) {
    const auto finalDir = m_options.modelsDir / s.modelId;
    const auto partial = m_options.modelsDir / (s.modelId + ".partial");
    try {
        std::filesystem::path modelPath;
        const bool adapter = s.category != "stable_diffusion";
        const std::uint64_t maxBytes =
            s.maxBytes > 0 ? std::min(s.maxBytes, m_options.maxDownloadBytes) : m_options.maxDownloadBytes;
        // An adapter is one file, kept under the id's name: an embedding's trigger word is its id.
        const std::string adapterFile = s.modelId + ".safetensors";
        if (!s.path.empty()) {
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
        if (adapter && s.path.empty()) {
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
        if (s.path.empty()) {
            std::filesystem::remove_all(finalDir);
            std::filesystem::rename(partial, finalDir);
        }
        setStatus(s.modelId, {s.modelId, "loading", 0, 0, 0, "checking the weights"});
        const auto model = adapter ? m_generator.addAdapter(s.modelId, modelPath, s.category, s.ownerId)
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
    const bool known = m_generator.removeModel(modelId);
    std::error_code ec;
    const bool files = std::filesystem::remove_all(m_options.modelsDir / modelId, ec) > 0;
    std::filesystem::remove_all(m_options.modelsDir / (modelId + ".partial"), ec);
    {
        std::lock_guard lock(m_mutex);
        m_status.erase(modelId);
    }
    return known || files;
}

void ModelInstaller::removeOwnedBy(std::int64_t ownerId) {
    if (ownerId == 0) return;
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
