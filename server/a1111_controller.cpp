#include "server/a1111_controller.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/sampler_names.h"
#include "server/a1111_codec.h"
#include "server/api_support.h"

namespace easel::server {
namespace {

using nlohmann::json;

constexpr std::size_t kImageBodyLimit = 40u * 1024 * 1024;  // init image, mask, and ControlNet-style extras

struct State {
    State(service::AccessControl& a, service::GenerationService& gen, A1111RoutesOptions o)
        : access(a), g(gen), options(std::move(o)) {}

    service::AccessControl& access;
    service::GenerationService& g;
    A1111RoutesOptions options;
    // POST /sdapi/v1/options' sd_model_checkpoint, per account, in memory only (A1111 keeps one for
    // the whole server; here each account has its own, and a restart forgets it).
    std::mutex mutex;
    std::map<std::int64_t, std::string> checkpoints;

    std::string checkpointOf(std::int64_t userId) {
        std::lock_guard lock(mutex);
        const auto it = checkpoints.find(userId);
        return it == checkpoints.end() ? std::string() : it->second;
    }
};

using A1111Handler = std::function<Response(const Request&, const json& body, const service::Access&)>;

// Authentication and the rate-limit headers, as authenticated() does, with A1111's error shape.
Handler a1111Route(const std::shared_ptr<State>& s, service::RateClass cls, A1111Handler handler) {
    return [s, cls, handler = std::move(handler)](const Request& req) {
        quota::RateDecision rate;
        rate.limit = -1;
        Response r;
        try {
            const auto body = jsonBody(req);
            const auto who = s->access.byKey(apiKeyFrom(req, body), &rate, cls);
            r = handler(req, body, who);
        } catch (const ServiceError& e) {
            r = a1111ErrorResponse(e);
        }
        if (rate.limit >= 0) {
            r.headers["X-RateLimit-Limit"] = std::to_string(rate.limit);
            r.headers["X-RateLimit-Remaining"] = std::to_string(rate.remaining);
            r.headers["X-RateLimit-Reset"] = std::to_string(rate.resetSeconds);
        }
        return r;
    };
}

bool active(const storage::JobRow& job) {
    return job.status == storage::JobStatus::Queued || job.status == storage::JobStatus::Running;
}

Response generate(State& s, const Request& req, const json& body, const service::Access& who, bool img2img) {
    auto request = parseA1111Generation(body, img2img, s.checkpointOf(who.caller.userId));
    request.instant = true;         // this handler does the (long) waiting, not the service's brief one
    request.requirePrompt = false;  // A1111 draws from an empty prompt too
    request.idempotencyKey = req.header("Idempotency-Key").substr(0, 200);
    // A1111 answers only when the images are done, so this request holds its HTTP worker for the whole
    // job: it takes one of the few places the synchronous dialects share (GenerationOptions::maxLongWaits).
    const auto slot = s.g.reserveLongWait();
    if (!slot) {
        ServiceError busy(ErrorCode::Unavailable,
                          "too many requests are waiting for their images; nothing was queued or charged, retry "
                          "shortly");
        busy.retryAfterSeconds = 5;
        throw busy;
    }
    const auto started = std::chrono::steady_clock::now();
    const auto accepted = [&] {
        try {
            return s.g.submit(who.caller, std::move(request));
        } catch (const ServiceError& e) {
            throw withA1111FieldNames(e);
        }
    }();
    const auto id = accepted.job.id;
    auto view = s.g.awaitJob(who.caller, id, *slot, s.options.timeout);
    if (active(view.job)) {
        // Nobody will ever read what a synchronous request gave up on: cancel it, so it is not charged.
        const bool timedOut = std::chrono::steady_clock::now() - started >= s.options.timeout;
        try {
            s.g.cancel(who.caller, id);
        } catch (const ServiceError&) {  // it finished meanwhile
        }
        view = s.g.fetch(who.caller, id);
        if (active(view.job) || view.job.status == storage::JobStatus::Cancelled) {
            const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(s.options.timeout).count();
            ServiceError e(ErrorCode::Unavailable,
                           timedOut ? "the images were not ready within " + std::to_string(seconds) +
                                          " s (the queue is long); the request was cancelled and not charged"
                                    : "the server is shutting down; the request was cancelled and not charged");
            e.retryAfterSeconds = 30;
            throw e;
        }
    }
    switch (view.job.status) {
        case storage::JobStatus::Failed:
            throw ServiceError(ErrorCode::Internal,
                               "generation failed: " + view.job.error + " (the request was not charged)");
        case storage::JobStatus::Cancelled:
            // Interrupted (POST /sdapi/v1/interrupt): A1111 answers 200 with what it has, here nothing.
            return Response::json(200, a1111GenerationJson(view, {}, {}, body, img2img));
        default:
            break;
    }
    std::vector<jobs::Bytes> images;
    std::vector<std::string> infotexts;
    for (const auto& img : view.images) {
        if (auto bytes = s.g.image(img.token)) {
            const auto text = s.g.imageText(*bytes, "image");
            const auto it = text.find("parameters");
            infotexts.push_back(it == text.end() ? std::string() : it->second);
            images.push_back(std::move(*bytes));
        }
    }
    return Response::json(200, a1111GenerationJson(view, images, infotexts, body, img2img));
}

std::string jobName(const std::string& kind) { return kind == "text2img" ? "txt2img" : kind; }

// The caller's job that A1111's single "current job" stands for: its running one (the oldest if
// several), else the queued one that runs next. `all`: the caller's queued and running jobs, newest first.
const service::JobView* currentJob(const std::vector<service::JobView>& all) {
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        if (it->job.status == storage::JobStatus::Running) return &*it;
    }
    return all.empty() ? nullptr : &all.back();
}

Response progress(State& s, const Request& req, const service::Access& who) {
    const auto skip = req.query.find("skip_current_image");
    const bool skipImage = skip != req.query.end() && (skip->second == "true" || skip->second == "1");
    const auto all = s.g.history(who.caller, 100, 0, true);
    json state{{"skipped", false},     {"interrupted", false}, {"job", ""},          {"job_count", all.size()},
               {"job_timestamp", "0"}, {"job_no", 0},          {"sampling_step", 0}, {"sampling_steps", 0}};
    double fraction = 0;
    double eta = 0;
    json image = nullptr;
    if (const auto* current = currentJob(all)) {
        state["job"] = jobName(current->job.kind);
        state["job_timestamp"] = a1111Timestamp(current->job.createdAt);
        eta = current->etaSeconds;
        if (const auto& p = current->progress) {
            state["job_no"] = p->sample;
            state["sampling_step"] = p->step;
            state["sampling_steps"] = p->total;
            if (p->total > 0 && p->samples > 0) {
                fraction = (p->sample + static_cast<double>(p->step) / p->total) / p->samples;
            }
            if (p->preview && !skipImage) image = encodeBase64(*p->preview);
        }
    }
    return Response::json(200, {{"progress", std::clamp(fraction, 0.0, 1.0)},
                                {"eta_relative", eta},
                                {"state", state},
                                {"current_image", image},
                                {"textinfo", nullptr}});
}

Response interrupt(State& s, const service::Access& who) {
    const auto all = s.g.history(who.caller, 100, 0, true);
    std::vector<std::int64_t> ids;
    for (const auto& v : all) {
        if (v.job.status == storage::JobStatus::Running) ids.push_back(v.job.id);
    }
    if (ids.empty() && !all.empty()) ids.push_back(all.back().job.id);  // the one that runs next
    for (const auto id : ids) {
        try {
            s.g.cancel(who.caller, id);  // refunded when it stops, like a native cancel
        } catch (const ServiceError&) {  // finished meanwhile
        }
    }
    return Response::json(200, json::object());
}

bool isCheckpoint(const jobs::ModelDescription& m) { return m.category == "stable_diffusion"; }

std::string checkpointOrDefault(State& s, const service::Access& who) {
    auto chosen = s.checkpointOf(who.caller.userId);
    if (!chosen.empty()) return chosen;
    const auto all = s.g.models();  // the first is the default model
    return all.empty() ? std::string() : all.front().id;
}

Response getOptions(State& s, const service::Access& who) {
    return Response::json(200, {{"sd_model_checkpoint", checkpointOrDefault(s, who)},
                                {"sd_checkpoint_hash", nullptr},
                                {"sd_vae", "Automatic"},
                                {"CLIP_stop_at_last_layers", 1},
                                {"samples_format", "png"}});
}

Response setOptions(State& s, const json& body, const service::Access& who) {
    FieldReader r{body, {}};
    auto model = r.string("sd_model_checkpoint", 300);
    r.check();
    if (model && !model->empty()) {
        if (const auto bracket = model->rfind(" ["); bracket != std::string::npos && model->back() == ']') {
            model->resize(bracket);
        }
        const auto visible = s.g.models(who.caller);
        if (std::none_of(visible.begin(), visible.end(),
                         [&](const auto& m) { return m.id == *model && isCheckpoint(m); })) {
            throw validationError({{"sd_model_checkpoint",
                                    {"'" + *model + "' is not a model on this server (GET /sdapi/v1/sd-models)"}}});
        }
        std::lock_guard lock(s.mutex);
        s.checkpoints[who.caller.userId] = *model;
    }
    // Every other option has no meaning here and is accepted unchanged, as A1111 ignores unknown ones.
    return Response::json(200, nullptr);
}

json samplersJson() {
    json out = json::array();
    for (const auto& entry : kSamplerNames) {
        // A1111 (1.9 and later) lists samplers without the schedule; "Karras" is a scheduler.
        if (entry.karras || entry.a1111.empty()) continue;
        json aliases = json::array();
        if (const auto api = apiSchedulerName(entry); api != entry.a1111) aliases.push_back(api);
        json options = json::object();
        if (findSampler(entry.diffusersClass, entry.algorithmType, true)) options["scheduler"] = "karras";
        out.push_back({{"name", entry.a1111}, {"aliases", aliases}, {"options", options}});
    }
    return out;
}

json schedulersJson() {
    return json::array({{{"name", "automatic"},
                         {"label", "Automatic"},
                         {"aliases", nullptr},
                         {"default_rho", -1},
                         {"need_inner_model", false}},
                        {{"name", "karras"},
                         {"label", "Karras"},
                         {"aliases", nullptr},
                         {"default_rho", 7.0},
                         {"need_inner_model", false}}});
}

}  // namespace

void registerA1111Routes(Router& router, service::AccessControl& access, service::GenerationService& g,
                         A1111RoutesOptions options) {
    auto s = std::make_shared<State>(access, g, options);
    using service::RateClass;

    router.add("POST", "/sdapi/v1/txt2img",
               a1111Route(s, RateClass::Generation,
                          [s](const Request& req, const json& body, const service::Access& who) {
                              return generate(*s, req, body, who, false);
                          }),
               "A1111: generate from a prompt; answers with the base64 PNGs when done", kImageBodyLimit);
    router.add("POST", "/sdapi/v1/img2img",
               a1111Route(s, RateClass::Generation,
                          [s](const Request& req, const json& body, const service::Access& who) {
                              return generate(*s, req, body, who, true);
                          }),
               "A1111: generate from init_images (denoising_strength); with mask, inpaint its white part",
               kImageBodyLimit);
    router.add(
        "GET", "/sdapi/v1/progress",
        a1111Route(s, RateClass::Read,
                   [s](const Request& req, const json&, const service::Access& who) { return progress(*s, req, who); }),
        "A1111: progress of the account's current job, with a preview (current_image)");
    router.add("POST", "/sdapi/v1/interrupt",
               a1111Route(s, RateClass::Read,
                          [s](const Request&, const json&, const service::Access& who) { return interrupt(*s, who); }),
               "A1111: cancel the account's running job (or the one that runs next); it is not charged");
    router.add("GET", "/sdapi/v1/sd-models",
               a1111Route(s, RateClass::Read,
                          [s](const Request&, const json&, const service::Access& who) {
                              json out = json::array();
                              for (const auto& m : s->g.models(who.caller)) {
                                  if (!isCheckpoint(m)) continue;
                                  out.push_back({{"title", m.id},
                                                 {"model_name", m.id},
                                                 {"hash", nullptr},
                                                 {"sha256", nullptr},
                                                 {"filename", m.id},
                                                 {"config", nullptr}});
                              }
                              return Response::json(200, out);
                          }),
               "A1111: the models (title is the id for override_settings.sd_model_checkpoint)");
    router.add("GET", "/sdapi/v1/samplers",
               a1111Route(s, RateClass::Read,
                          [](const Request&, const json&, const service::Access&) {
                              return Response::json(200, samplersJson());
                          }),
               "A1111: sampler names");
    router.add("GET", "/sdapi/v1/schedulers",
               a1111Route(s, RateClass::Read,
                          [](const Request&, const json&, const service::Access&) {
                              return Response::json(200, schedulersJson());
                          }),
               "A1111: schedules (Automatic, Karras)");
    router.add(
        "GET", "/sdapi/v1/loras",
        a1111Route(
            s, RateClass::Read,
            [s](const Request&, const json&, const service::Access& who) {
                json out = json::array();
                for (const auto& m : s->g.models(who.caller)) {
                    if (m.category != "lora") continue;
                    out.push_back({{"name", m.id}, {"alias", m.id}, {"path", m.id}, {"metadata", json::object()}});
                }
                return Response::json(200, out);
            }),
        "A1111: the LoRAs this account may use (<lora:name:weight> in the prompt)");
    router.add("GET", "/sdapi/v1/options",
               a1111Route(s, RateClass::Read,
                          [s](const Request&, const json&, const service::Access& who) { return getOptions(*s, who); }),
               "A1111: options (sd_model_checkpoint: this account's default model)");
    router.add("POST", "/sdapi/v1/options",
               a1111Route(s, RateClass::Read,
                          [s](const Request&, const json& body, const service::Access& who) {
                              return setOptions(*s, body, who);
                          }),
               "A1111: set sd_model_checkpoint for this account (kept in memory); other options are ignored");
    router.add("POST", "/sdapi/v1/png-info",
               a1111Route(s, RateClass::Read,
                          [s](const Request&, const json& body, const service::Access&) {
                              FieldReader r{body, {}};
                              const auto text = r.string("image", kImageBodyLimit);
                              r.check();
                              if (!text || text->empty()) throw validationError({{"image", {"is required"}}});
                              const auto bytes = decodeBase64(*text);
                              if (!bytes) throw validationError({{"image", {"is not base64"}}});
                              return Response::json(200, a1111PngInfo(s->g.imageText(*bytes, "image")));
                          }),
               "A1111: the generation parameters a PNG carries", kImageBodyLimit);
}

}  // namespace easel::server
