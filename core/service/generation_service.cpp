#include "service/generation_service.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <system_error>

#include "common/lora_tags.h"
#include "common/random_token.h"
#include "common/request_limits.h"
#include "inference/image/image.h"
#include "storage/user_repository.h"

namespace easel::service {
namespace {

using Errors = std::map<std::string, std::vector<std::string>>;

// One of the service's decode slots, held for a scope.
class HeldSlot {
public:
    explicit HeldSlot(DecodeSlots& slots) : m_slots(slots) { m_slots.acquire(); }
    ~HeldSlot() { m_slots.release(); }
    HeldSlot(const HeldSlot&) = delete;
    HeldSlot& operator=(const HeldSlot&) = delete;

private:
    DecodeSlots& m_slots;
};

// Decodes to check the bytes really are an image of an accepted format and size, holding one of the
// service's decode slots.
std::pair<int, int> checkImage(DecodeSlots& slots, const jobs::Bytes& bytes, const std::string& field, Errors& errors) {
    try {
        const HeldSlot held(slots);
        const auto img = inference::decodeImage(bytes, limits::kMaxInputPixels);
        return {img.width, img.height};
    } catch (const std::exception& e) {
        errors[field].push_back(std::string("is not a usable image: ") + e.what());
        return {0, 0};
    }
}

// OpenAI's edits: the fully transparent pixels of the mask, or of the image when there is no mask, are
// the area to repaint. Replaces the mask with that white-on-black one.
void maskFromTransparency(DecodeSlots& slots, SubmitRequest& r, Errors& errors) {
    const auto* source = r.maskImage ? &*r.maskImage : r.initImage ? &*r.initImage : nullptr;
    if (source == nullptr) return;  // "is required" is said elsewhere
    std::optional<inference::Image> mask;
    try {
        const HeldSlot held(slots);
        mask = inference::transparencyMask(*source, limits::kMaxInputPixels);
    } catch (const std::exception&) {
        return;  // checkImage reports what is wrong with the image
    }
    if (!mask) {
        errors[r.maskImage ? "mask_image" : "init_image"].push_back(
            r.maskImage ? "has no fully transparent pixels: they mark the area to edit"
                        : "has no fully transparent pixels and no mask was given: transparent pixels mark the area "
                          "to edit");
        return;
    }
    r.maskImage = inference::encodePng(*mask);
}

// A1111's inpainting_mask_invert: the same mask with black and white swapped.
void invertMask(DecodeSlots& slots, SubmitRequest& r) {
    if (!r.maskImage) return;
    try {
        const HeldSlot held(slots);
        auto mask = inference::decodeImage(*r.maskImage, limits::kMaxInputPixels);
        for (auto& v : mask.rgb) v = static_cast<std::uint8_t>(255 - v);
        r.maskImage = inference::encodePng(mask);
    } catch (const std::exception&) {
        // checkImage reports what is wrong with the image
    }
}

}  // namespace

GenerationService::GenerationService(const storage::Database& db, storage::BlobStore& blobs, jobs::JobRunner& runner,
                                     jobs::ImageGenerator& generator, const Clock& clock, GenerationOptions options)
    : m_db(db),
      m_blobs(blobs),
      m_runner(runner),
      m_generator(generator),
      m_clock(clock),
      m_options(options),
      m_jobs(db),
      m_ledger(db) {}

namespace {

bool visibleTo(const accounts::Caller& caller, const jobs::ModelDescription& m) {
    return m.ownerId == 0 || m.ownerId == caller.userId || caller.isAdmin;
}

}  // namespace

std::vector<jobs::ModelDescription> GenerationService::models(const accounts::Caller& caller) const {
    auto all = m_generator.models();
    std::erase_if(all, [&](const jobs::ModelDescription& m) { return !visibleTo(caller, m); });
    return all;
}

jobs::ModelDescription GenerationService::resolveModel(const accounts::Caller& caller,
                                                       const std::string& modelId) const {
    if (modelId.empty()) {
        auto model = m_generator.defaultModel();
        if (!model) throw ServiceError(ErrorCode::Unavailable, "no model is loaded on this server");
        return *model;
    }
    for (const auto& m : models(caller)) {
        if (m.id != modelId) continue;
        if (m.category == "lora") {
            throw validationError(
                {{"model_id",
                  {"'" + modelId +
                   "' is a LoRA: name it in lora_model, with a model_id of a Stable Diffusion model"}}});
        }
        if (m.category == "embeddings") {
            throw validationError({{"model_id", {"'" + modelId + "' is an embedding: name it in embeddings_model"}}});
        }
        return m;
    }
    throw validationError({{"model_id", {"'" + modelId + "' is not a model on this server (see /api/v1/models)"}}});
}

void GenerationService::validate(const accounts::Caller& caller, SubmitRequest& r,
                                 const jobs::ModelDescription& model) const {
    auto& p = r.params;
    Errors errors;
    checkAdapters(caller, model, p, errors);  // first: it takes <lora:...> tags out of the prompt
    if (r.requirePrompt && p.prompt.find_first_not_of(" \t\r\n") == std::string::npos) {
        errors["prompt"].push_back("is required");
    }
    if (p.kind != "text2img" && !r.initImage) errors["init_image"].push_back("is required for " + p.kind);
    if (r.maskFromTransparency) maskFromTransparency(m_decodes, r, errors);
    if (r.invertMask) invertMask(m_decodes, r);
    if (p.kind == "inpaint" && !r.maskImage) errors["mask_image"].push_back("is required for inpaint");
    std::pair<int, int> initSize{0, 0};
    if (r.initImage) initSize = checkImage(m_decodes, *r.initImage, "init_image", errors);
    if (r.maskImage) {
        const auto maskSize = checkImage(m_decodes, *r.maskImage, "mask_image", errors);
        if (maskSize.first > 0 && initSize.first > 0 && maskSize != initSize) {
            errors["mask_image"].push_back("must have the init image's size (" + std::to_string(initSize.first) + "x" +
                                           std::to_string(initSize.second) + "), not " +
                                           std::to_string(maskSize.first) + "x" + std::to_string(maskSize.second));
        }
    }
    if (r.sizeFromInitImage && initSize.first > 0 && p.width == 0 && p.height == 0) {
        // The input's size, rounded down to the model's multiple and within the side limit.
        auto fit = [&](int v) {
            return std::max(model.sizeMultiple,
                            std::min(v, m_options.maxSide) / model.sizeMultiple * model.sizeMultiple);
        };
        p.width = fit(initSize.first);
        p.height = fit(initSize.second);
    }
    if (p.width == 0) p.width = model.defaultWidth;
    if (p.height == 0) p.height = model.defaultHeight;
    for (auto [name, value] : {std::pair<const char*, int>{"width", p.width}, {"height", p.height}}) {
        if (value < model.sizeMultiple || value > m_options.maxSide || value % model.sizeMultiple != 0) {
            errors[name].push_back("must be a multiple of " + std::to_string(model.sizeMultiple) + " from " +
                                   std::to_string(model.sizeMultiple) + " to " + std::to_string(m_options.maxSide));
        }
    }
    if (!limits::kSamples.contains(p.samples)) errors["samples"].push_back("must be " + limits::kSamples.describe());
    if (p.steps == 0) p.steps = model.defaultSteps;
    if (p.steps < limits::kSteps.min) errors["num_inference_steps"].push_back("must be at least 1");
    // The plan's cap, like the hosted service, and never past what the engine runs.
    p.steps = std::min({p.steps, caller.plan->maxSteps, limits::kSteps.max});
    if (p.guidance < 0) p.guidance = model.defaultGuidance;
    if (!limits::kGuidance.contains(p.guidance))
        errors["guidance_scale"].push_back("must be " + limits::kGuidance.describe());
    if (!limits::kStrength.contains(p.strength))
        errors["strength"].push_back("must be " + limits::kStrength.describe());
    if (!limits::kClipSkip.contains(p.clipSkip))
        errors["clip_skip"].push_back("must be " + limits::kClipSkip.describe());
    for (const auto& [name, field] : SizeConditioning::kFields) {
        if (!limits::kSizeConditioning.contains(p.sizes.*field))
            errors[std::string(name)].push_back("must be " + limits::kSizeConditioning.describe() +
                                                " (0: the image's size)");
    }
    if (p.seed && !limits::kSeed.contains(*p.seed)) errors["seed"].push_back("must be " + limits::kSeed.describe());
    if (!p.scheduler.empty()) {
        if (auto problem = m_generator.checkScheduler(p.scheduler)) errors["scheduler"].push_back(*problem);
    }
    if (!errors.empty()) throw validationError(std::move(errors));
    p.modelId = model.id;
}

JobView GenerationService::submit(const accounts::Caller& caller, SubmitRequest r) {
    if (!r.idempotencyKey.empty()) {
        if (const auto existing = m_jobs.findByIdempotencyKey(caller.userId, r.idempotencyKey)) return view(*existing);
    }
    const auto model = resolveModel(caller, r.params.modelId);
    validate(caller, r, model);
    // Room for the images to come: a generated PNG takes about 1.5 bytes a pixel.
    checkStorage(caller, static_cast<std::int64_t>(r.params.width) * r.params.height * 3 / 2 * r.params.samples);
    // Decided now rather than by the worker, so that the first reply already reports the seed and the
    // image links, and a job re-run after a crash draws the same pictures.
    if (!r.params.seed) r.params.seed = randomSeed();
    r.params.imageTokens.clear();
    for (int i = 0; i < r.params.samples; ++i) r.params.imageTokens.push_back(randomToken());

    // Inputs go to the blob store first; if the job is refused they are removed again.
    std::vector<std::string> stored;
    auto store = [&](const jobs::Bytes& bytes) {
        auto name = "input-" + randomToken();
        putBlob(caller.userId, name, bytes);
        stored.push_back(name);
        return name;
    };
    storage::JobRow row;
    try {
        if (r.initImage) r.params.initBlob = store(*r.initImage);
        if (r.maskImage) r.params.maskBlob = store(*r.maskImage);
        row.userId = caller.userId;
        row.kind = r.params.kind;
        row.priority = caller.plan->priority;
        row.images = r.params.samples;
        row.request = jobs::toJson(r.params).dump();
        row.trackId = r.trackId;
        row.webhook = r.webhook;
        row.temp = r.temp;
        row.idempotencyKey = r.idempotencyKey;
        row.createdAt = m_clock.nowSeconds();
        row.modelId = model.id;  // the model resolved now (a default one too): only its workers claim it
        bool replay = false;
        m_db.transaction([&] {
            m_jobs.lockOwner(caller.userId);  // the key lookup and the count below hold against other servers too
            if (!r.idempotencyKey.empty()) {
                if (auto existing = m_jobs.findByIdempotencyKey(caller.userId, r.idempotencyKey)) {
                    row = *existing;  // a concurrent retry won the race: answer with its job
                    replay = true;
                    return;
                }
            }
            if (m_jobs.activeCount(caller.userId) >= caller.plan->maxQueued) {
                ServiceError e(ErrorCode::TooManyRequests, "the " + caller.plan->name + " plan allows " +
                                                               std::to_string(caller.plan->maxQueued) +
                                                               " queued requests at once; wait for one to finish");
                e.retryAfterSeconds = std::max(1, static_cast<int>(std::ceil(m_runner.secondsPerImage())));
                throw e;
            }
            if (!m_ledger.charge(caller.userId, row.images, caller.plan->imageQuota)) {
                const auto user = storage::UserRepository(m_db).findById(caller.userId);
                if (!user || user->deleting || !caller.plan->imageQuota) {
                    throw ServiceError(ErrorCode::Unauthorized, "the account no longer exists");
                }
                throw ServiceError(ErrorCode::PaymentRequired,
                                   "the " + caller.plan->name + " plan's " + std::to_string(*caller.plan->imageQuota) +
                                       " image generations are used up (" + std::to_string(user->imagesUsed) +
                                       " used, " + std::to_string(row.images) +
                                       " requested); upgrade the plan to continue");
            }
            row.id = m_jobs.insert(row);
        });
        if (replay) {
            for (const auto& name : stored) m_blobs.remove(caller.userId, name);
            return view(row);
        }
    } catch (...) {
        for (const auto& name : stored) m_blobs.remove(caller.userId, name);
        throw;
    }
    m_runner.notify();
    if (!r.instant) waitBriefly(row.id);
    const auto job = m_jobs.find(row.id);
    if (!job) throw ServiceError(ErrorCode::NotFound, "the job was deleted");
    return view(*job);
}

void GenerationService::checkAdapters(const accounts::Caller& caller, const jobs::ModelDescription& model,
                                      jobs::GenerationParams& p,
                                      std::map<std::string, std::vector<std::string>>& errors) const {
    auto tags = extractLoraTags(p.prompt);
    for (auto& e : tags.errors) errors["prompt"].push_back(std::move(e));
    if (!tags.loras.empty()) {
        p.prompt = std::move(tags.prompt);
        for (auto& t : tags.loras) p.loras.push_back({std::move(t.name), t.textEncoderStrength, t.unetStrength});
    }
    if (p.loras.empty() && p.embeddings.empty()) return;
    const auto all = models(caller);  // another account's own LoRA is as unknown as a missing one
    auto find = [&](const std::string& id) -> const jobs::ModelDescription* {
        for (const auto& m : all) {
            if (m.id == id) return &m;
        }
        return nullptr;
    };
    // A LoRA or embedding made for another architecture than the model's is refused now, not when it runs.
    auto fits = [&](const jobs::ModelDescription& adapter) {
        return adapter.family.empty() || model.family.empty() || adapter.family == model.family;
    };
    if (p.loras.size() > limits::kMaxLoras) {
        errors["lora_model"].push_back("at most " + std::to_string(limits::kMaxLoras) + " LoRAs per request");
    }
    std::vector<std::string> seen;
    for (const auto& use : p.loras) {
        const auto* d = find(use.id);
        if (d == nullptr || d->category != "lora") {
            errors["lora_model"].push_back("'" + use.id +
                                           "' is not a LoRA on this server (GET /api/v1/models lists them with "
                                           "model_category \"lora\")");
        } else if (!fits(*d)) {
            errors["lora_model"].push_back("'" + use.id + "' is a LoRA for " + d->family + ", and '" + model.id +
                                           "' is " + model.family);
        }
        if (std::find(seen.begin(), seen.end(), use.id) != seen.end()) {
            errors["lora_model"].push_back("names '" + use.id + "' twice");
        }
        seen.push_back(use.id);
        for (const double s : {use.textEncoderStrength, use.unetStrength}) {
            if (!limits::kLoraStrength.contains(s)) {
                errors["lora_strength"].push_back("must be " + limits::kLoraStrength.describe());
                break;
            }
        }
    }
    if (p.embeddings.size() > limits::kMaxEmbeddings) {
        errors["embeddings_model"].push_back("at most " + std::to_string(limits::kMaxEmbeddings) +
                                             " embeddings per request");
    }
    for (const auto& id : p.embeddings) {
        const auto* d = find(id);
        if (d == nullptr || d->category != "embeddings") {
            errors["embeddings_model"].push_back("'" + id +
                                                 "' is not an embedding on this server (GET /api/v1/models lists "
                                                 "them with model_category \"embeddings\")");
        } else if (!fits(*d)) {
            errors["embeddings_model"].push_back("'" + id + "' is an embedding for " + d->family + ", and '" +
                                                 model.id + "' is " + model.family);
        }
    }
}

void GenerationService::putBlob(std::int64_t owner, const std::string& name, const jobs::Bytes& bytes) {
    try {
        m_blobs.put(owner, name, bytes);
    } catch (const std::exception& e) {
        // The detail names a path on this server: it goes to the log, the client gets a 503.
        std::cerr << "easel: storing " << name << ": " << e.what() << '\n';
        const auto* sys = dynamic_cast<const std::system_error*>(&e);
        const bool full = sys != nullptr && sys->code() == std::errc::no_space_on_device;
        ServiceError err(ErrorCode::Unavailable, full ? "the server's disk is full; nothing was stored or charged"
                                                      : "the server could not store the image; nothing was charged");
        err.retryAfterSeconds = full ? 600 : 30;
        throw err;
    }
}

std::int64_t GenerationService::checkStorage(const accounts::Caller& caller, std::int64_t adding) const {
    if (const auto free = m_blobs.freeBytes();
        free && *free < m_options.minFreeDiskBytes + static_cast<std::uint64_t>(adding)) {
        ServiceError e(ErrorCode::Unavailable,
                       "the server's disk is nearly full; new requests are refused until an "
                       "operator frees space");
        e.retryAfterSeconds = 600;
        throw e;
    }
    auto stored = m_jobs.storedBytes(caller.userId, m_clock.nowSeconds());
    for (const auto& m : m_generator.models()) {
        if (m.ownerId == caller.userId) stored += static_cast<std::int64_t>(m.fileBytes);
    }
    const auto cap = caller.plan->storageBytes;
    if (stored + adding > cap) {
        auto mib = [](std::int64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MB"; };
        throw ServiceError(ErrorCode::InsufficientStorage,
                           "the " + caller.plan->name + " plan keeps at most " + mib(cap) +
                               " of images, uploads, LoRAs and embeddings; " + mib(stored) + " are kept now" +
                               (adding > 0 ? ", and this adds " + mib(adding) : "") +
                               ". Delete old requests (DELETE /api/v1/history/{id}) or your own LoRAs "
                               "(POST /api/v1/models/delete), or wait for uploads to expire");
    }
    return stored;
}

std::uint64_t GenerationService::storageLeft(const accounts::Caller& caller) const {
    const auto stored = checkStorage(caller, 1);
    return static_cast<std::uint64_t>(caller.plan->storageBytes - stored);
}

std::map<std::string, std::string> GenerationService::imageText(const jobs::Bytes& image,
                                                                const std::string& field) const {
    try {
        return inference::readPngText(image);
    } catch (const inference::ImageError&) {
        // Not a PNG: an image without text chunks (a JPEG, say), or not an image at all.
        Errors errors;
        checkImage(m_decodes, image, field, errors);
        if (!errors.empty()) throw validationError(std::move(errors));
        return {};
    }
}

std::optional<std::string> GenerationService::imageProblem(const jobs::Bytes& image) const {
    Errors errors;
    checkImage(m_decodes, image, "image", errors);
    if (errors.empty()) return std::nullopt;
    return errors.begin()->second.front();
}

std::optional<GenerationService::LongWait> GenerationService::reserveLongWait() {
    if (m_longWaits.fetch_add(1) >= m_options.maxLongWaits) {
        m_longWaits.fetch_sub(1);
        return std::nullopt;
    }
    return LongWait(m_longWaits);
}

JobView GenerationService::awaitJob(const accounts::Caller& caller, std::int64_t jobId, const LongWait&,
                                    std::chrono::milliseconds limit) {
    fetch(caller, jobId);                 // another account's job is "not found" before anything waits
    m_runner.waitFinished(jobId, limit);  // returns early when the server shuts down
    return fetch(caller, jobId);
}

void GenerationService::waitBriefly(std::int64_t jobId) {
    if (m_waiting.fetch_add(1) >= m_options.maxWaiting) {
        m_waiting.fetch_sub(1);
        return;
    }
    struct Release {
        std::atomic<int>& count;
        ~Release() { count.fetch_sub(1); }
    } release{m_waiting};
    m_runner.waitFinished(jobId, m_options.syncWait);
}

JobView GenerationService::view(const storage::JobRow& job) const {
    JobView v;
    v.job = job;
    v.params = jobs::paramsFromJson(nlohmann::json::parse(job.request));
    v.images = m_jobs.imagesOf(job.id);
    if (job.status == storage::JobStatus::Running) v.progress = m_runner.progress(job.id);
    const double perImage = m_runner.secondsPerImage();
    if (job.status == storage::JobStatus::Queued) {
        const auto standing = m_jobs.queueStanding(job);
        v.queuePosition = standing.position;
        // Every image that runs first, then ours.
        v.etaSeconds = perImage * static_cast<double>(standing.imagesAhead + job.images);
    } else if (job.status == storage::JobStatus::Running) {
        double done = 0;
        if (v.progress && v.progress->total > 0) {
            done = v.progress->sample + static_cast<double>(v.progress->step) / v.progress->total;
        }
        v.etaSeconds = std::max(0.0, perImage * (job.images - done));
    }
    return v;
}

JobView GenerationService::fetch(const accounts::Caller& caller, std::int64_t jobId, bool wait) {
    auto job = m_jobs.find(jobId);
    if (!job || job->userId != caller.userId) {
        throw ServiceError(ErrorCode::NotFound, "no request with id " + std::to_string(jobId));
    }
    if (wait) {
        waitBriefly(jobId);
        job = m_jobs.find(jobId);
        if (!job) throw ServiceError(ErrorCode::NotFound, "no request with id " + std::to_string(jobId));
    }
    return view(*job);
}

void GenerationService::cancel(const accounts::Caller& caller, std::int64_t jobId) {
    const auto job = m_jobs.find(jobId);
    if (!job || job->userId != caller.userId) {
        throw ServiceError(ErrorCode::NotFound, "no request with id " + std::to_string(jobId));
    }
    if (job->status != storage::JobStatus::Queued && job->status != storage::JobStatus::Running) {
        throw ServiceError(ErrorCode::Conflict, "request " + std::to_string(jobId) + " has already finished (" +
                                                    storage::jobStatusName(job->status) + ")");
    }
    m_runner.cancel(jobId);
}

void GenerationService::remove(const accounts::Caller& caller, std::int64_t jobId) {
    const auto job = m_jobs.find(jobId);
    if (!job || job->userId != caller.userId) {
        throw ServiceError(ErrorCode::NotFound, "no request with id " + std::to_string(jobId));
    }
    if (job->status == storage::JobStatus::Queued || job->status == storage::JobStatus::Running) {
        throw ServiceError(ErrorCode::Conflict, "cancel request " + std::to_string(jobId) + " before deleting it");
    }
    const auto params = jobs::paramsFromJson(nlohmann::json::parse(job->request));
    for (const auto& img : m_jobs.imagesOf(jobId)) m_blobs.remove(job->userId, img.token + ".png");
    if (!params.initBlob.empty()) m_blobs.remove(job->userId, params.initBlob);
    if (!params.maskBlob.empty()) m_blobs.remove(job->userId, params.maskBlob);
    m_jobs.remove(jobId);
}

std::vector<JobView> GenerationService::history(const accounts::Caller& caller, int limit, int offset,
                                                bool activeOnly) {
    std::vector<JobView> out;
    for (const auto& job :
         m_jobs.listForUser(caller.userId, std::clamp(limit, 1, 100), std::max(0, offset), activeOnly)) {
        out.push_back(view(job));
    }
    return out;
}

std::int64_t GenerationService::historyTotal(const accounts::Caller& caller, bool activeOnly) const {
    return activeOnly ? m_jobs.activeCount(caller.userId) : m_jobs.countForUser(caller.userId);
}

std::optional<jobs::Bytes> GenerationService::image(const std::string& token) const {
    const auto row = m_jobs.imageByToken(token);
    if (!row || row->expiresAt <= m_clock.nowSeconds()) return std::nullopt;
    return m_blobs.get(row->userId, token + ".png");
}

std::optional<std::string> GenerationService::imageRedirect(const std::string& token) const {
    if (!m_blobs.hasDirectLinks()) return std::nullopt;
    const auto row = m_jobs.imageByToken(token);
    if (!row || row->expiresAt <= m_clock.nowSeconds()) return std::nullopt;
    return m_blobs.directLink(row->userId, token + ".png");
}

std::string GenerationService::upload(const accounts::Caller& caller, const jobs::Bytes& image) {
    Errors errors;
    checkImage(m_decodes, image, "image", errors);
    if (!errors.empty()) throw validationError(std::move(errors));
    checkStorage(caller, static_cast<std::int64_t>(image.size()));
    const auto token = "upload-" + randomToken();
    putBlob(caller.userId, token, image);
    const auto now = m_clock.nowSeconds();
    m_jobs.insertUpload(caller.userId, token, now, now + m_options.uploadRetentionSeconds,
                        static_cast<std::int64_t>(image.size()));
    return token;
}

std::optional<std::pair<std::int64_t, jobs::Bytes>> GenerationService::uploaded(const std::string& token) const {
    const auto owner = m_jobs.uploadOwner(token, m_clock.nowSeconds());
    if (!owner) return std::nullopt;
    auto bytes = m_blobs.get(*owner, token);
    if (!bytes) return std::nullopt;
    return std::pair{*owner, std::move(*bytes)};
}

}  // namespace easel::service
