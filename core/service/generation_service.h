#pragma once
// Submit, fetch, cancel and list generation jobs for a caller: validation against the model and the
// plan, the queue cap, and the quota charge (one transaction with the job's creation, so concurrent
// requests can never overdraw it). Both the REST controllers and any other front-end call this.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <semaphore>
#include <string>
#include <utility>
#include <vector>

#include "accounts/account_service.h"
#include "common/clock.h"
#include "common/request_limits.h"
#include "jobs/image_generator.h"
#include "jobs/job_runner.h"
#include "quota/quota_ledger.h"
#include "storage/blob_store.h"
#include "storage/database.h"
#include "storage/job_repository.h"

namespace easel::service {

// Images being decoded to be checked, at most limits::kConcurrentDecodes at once.
using DecodeSlots = std::counting_semaphore<limits::kConcurrentDecodes>;

struct GenerationOptions {
    std::chrono::milliseconds syncWait{15'000};  // answer "processing" after this
    // Requests held open for their job at once; more answer "processing" at once, so that waiting
    // requests cannot take every HTTP worker (the server has 16) from fetches, logins and health checks.
    int maxWaiting = 8;
    // Requests of the synchronous dialects (A1111, OpenAI), which hold their worker until the job ends;
    // more are refused with 503 before anything is charged.
    int maxLongWaits = 4;
    std::int64_t uploadRetentionSeconds = 24 * 3600;
    int maxSide = limits::kDefaultMaxSide;  // at most limits::kEngineMaxSide
    // New uploads and generations are refused (503) while the data dir's disk has less free space,
    // rather than failing half-way through writing images.
    std::uint64_t minFreeDiskBytes = 512ull << 20;
};

struct SubmitRequest {
    jobs::GenerationParams params;
    std::optional<jobs::Bytes> initImage;  // encoded image bytes (PNG, JPEG, WebP, BMP)
    std::optional<jobs::Bytes> maskImage;
    std::string webhook;
    std::string trackId;
    bool temp = false;
    bool instant = false;  // answer at once, without waiting
    std::string idempotencyKey;
    // OpenAI's edits: the fully transparent pixels of maskImage (or of initImage when there is no mask)
    // are the area to repaint; the mask is replaced by that white-on-black one.
    bool maskFromTransparency = false;
    // Without width and height, the output takes the init image's size (OpenAI's edits and variations).
    bool sizeFromInitImage = false;
    // The hosted API requires a prompt; A1111 and OpenAI's variations do not.
    bool requirePrompt = true;
    // A1111's inpainting_mask_invert: the black part of the mask is repainted instead of the white.
    bool invertMask = false;
};

struct JobView {
    storage::JobRow job;
    jobs::GenerationParams params;
    std::vector<storage::ImageRow> images;
    std::optional<jobs::JobProgress> progress;
    int queuePosition = 0;
    double etaSeconds = 0;
};

class GenerationService {
public:
    GenerationService(const storage::Database& db, storage::BlobStore& blobs, jobs::JobRunner& runner,
                      jobs::ImageGenerator& generator, const Clock& clock, GenerationOptions options = {});

    JobView submit(const accounts::Caller& caller, SubmitRequest request);
    // Another account's job is "not found", never "forbidden".
    JobView fetch(const accounts::Caller& caller, std::int64_t jobId, bool wait = false);
    void cancel(const accounts::Caller& caller, std::int64_t jobId);
    void remove(const accounts::Caller& caller, std::int64_t jobId);
    std::vector<JobView> history(const accounts::Caller& caller, int limit, int offset, bool activeOnly = false);
    std::int64_t historyTotal(const accounts::Caller& caller, bool activeOnly = false) const;

    // Images by their unguessable token (the hosted service's public links).
    std::optional<jobs::Bytes> image(const std::string& token) const;
    // Where to send a client for that image instead of serving it (a pre-signed bucket URL), when
    // the blob store hands those out and the image is still kept; nullopt otherwise.
    std::optional<std::string> imageRedirect(const std::string& token) const;
    // Requests held open for their job right now (at most GenerationOptions::maxWaiting).
    int waiting() const { return m_waiting.load(); }

    // The synchronous dialects hold an HTTP worker until their job ends. Each takes one of
    // GenerationOptions::maxLongWaits slots first (nullopt: all taken; answer 503 before submitting).
    class LongWait {
    public:
        explicit LongWait(std::atomic<int>& count) : m_count(&count) {}
        LongWait(LongWait&& other) noexcept : m_count(std::exchange(other.m_count, nullptr)) {}
        LongWait& operator=(LongWait&&) = delete;
        ~LongWait() {
            if (m_count != nullptr) m_count->fetch_sub(1);
        }

    private:
        std::atomic<int>* m_count;
    };
    std::optional<LongWait> reserveLongWait();
    int longWaits() const { return m_longWaits.load(); }
    // The job once it has ended (done, failed or cancelled), or as it stands when `limit` has passed.
    JobView awaitJob(const accounts::Caller& caller, std::int64_t jobId, const LongWait& slot,
                     std::chrono::milliseconds limit);
    // base64_to_url: stores a validated image for use as init_image; returns its token.
    std::string upload(const accounts::Caller& caller, const jobs::Bytes& image);
    // The text chunks an image carries (a PNG's tEXt/iTXt, e.g. A1111's "parameters"); none for the
    // other formats. Throws a 400 naming `field` when the bytes are not a usable image.
    std::map<std::string, std::string> imageText(const jobs::Bytes& image, const std::string& field) const;
    // nullopt when `image` is a usable input image (an accepted format and size, decodable), else what is
    // wrong with it. Decodes under the service's decode slots (fine-tuning checks its images with it).
    std::optional<std::string> imageProblem(const jobs::Bytes& image) const;
    // The owner and bytes of a live upload.
    std::optional<std::pair<std::int64_t, jobs::Bytes>> uploaded(const std::string& token) const;

    // Every model on the server (admin pages).
    std::vector<jobs::ModelDescription> models() const { return m_generator.models(); }
    // What `caller` may use: the shared models and adapters, and its own LoRAs and embeddings (admins: all).
    std::vector<jobs::ModelDescription> models(const accounts::Caller& caller) const;
    // Bytes the account may still store (images, uploads, its own LoRAs and embeddings); throws 507 when
    // none are left and 503 when the disk is nearly full.
    std::uint64_t storageLeft(const accounts::Caller& caller) const;
    int queueLength() const { return m_jobs.queuedTotal(); }
    // Jobs kept in the database per status (/metrics).
    std::map<std::string, std::int64_t> jobsByStatus() const { return m_jobs.countByStatus(); }

    // The current view of any job (webhooks; callers of the API go through fetch()).
    JobView view(const storage::JobRow& job) const;

private:
    void validate(const accounts::Caller& caller, SubmitRequest& request, const jobs::ModelDescription& model) const;
    // Waits up to syncWait for the job, unless maxWaiting requests already wait.
    void waitBriefly(std::int64_t jobId);
    jobs::ModelDescription resolveModel(const accounts::Caller& caller, const std::string& modelId) const;
    // Takes <lora:...> tags out of the prompt into params.loras and checks every LoRA and embedding
    // named: known to the caller, of that category, made for the model's architecture, strengths in range.
    void checkAdapters(const accounts::Caller& caller, const jobs::ModelDescription& model, jobs::GenerationParams& p,
                       std::map<std::string, std::vector<std::string>>& errors) const;
    // BlobStore::put, with a failure (a full disk included) turned into a clear 503.
    void putBlob(std::int64_t owner, const std::string& name, const jobs::Bytes& bytes);
    // Throws 507 when the account's kept images, uploads and own adapters plus `adding` bytes pass its
    // plan's cap, and 503 when the disk is nearly full. Returns the bytes stored now.
    std::int64_t checkStorage(const accounts::Caller& caller, std::int64_t adding) const;

    const storage::Database& m_db;
    storage::BlobStore& m_blobs;
    jobs::JobRunner& m_runner;
    jobs::ImageGenerator& m_generator;
    const Clock& m_clock;
    GenerationOptions m_options;
    storage::JobRepository m_jobs;
    quota::QuotaLedger m_ledger;
    mutable DecodeSlots m_decodes{limits::kConcurrentDecodes};
    std::atomic<int> m_waiting{0};
    std::atomic<int> m_longWaits{0};
};

}  // namespace easel::service
