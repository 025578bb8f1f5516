#include "server/generation_controller.h"

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "server/authenticated.h"
#include "server/generation_codec.h"

namespace easel::server {
namespace {

using nlohmann::json;

constexpr std::size_t kImageBodyLimit = 40u * 1024 * 1024;  // two base64 images of up to ~15 MB each

std::int64_t requestId(const Request& req, const json& body) {
    if (const auto it = req.pathParams.find("id"); it != req.pathParams.end()) {
        try {
            std::size_t used = 0;
            const auto v = std::stoll(it->second, &used);
            if (used == it->second.size() && v > 0) return v;
        } catch (const std::exception&) {
        }
        throw ServiceError(ErrorCode::NotFound, "no request with id " + it->second);
    }
    FieldReader r{body, {}};
    const auto id = r.integer("request_id");
    if (!id) r.errors["request_id"].push_back("is required");
    r.check();
    return *id;
}

}  // namespace

void registerGenerationRoutes(Router& router, service::AccessControl& access, service::GenerationService& g,
                              GenerationRoutesOptions options) {
    const auto base = options.publicUrl;

    const ImageFetcher fetcher{options.outbound, options.allowPrivateImageUrls, options.imageFetchTimeout};
    auto submit = [&access, &g, base, fetcher](const std::string& kind) {
        return authenticated(
            access, Credential::ApiKeyGeneration,
            [&g, base, kind, fetcher](const Request& req, const json& body, const service::Access& who) {
                auto request = parseSubmit(body, kind, g, who.caller.userId, fetcher, baseUrlFor(req, base));
                request.idempotencyKey = req.header("Idempotency-Key").substr(0, 200);
                const auto view = g.submit(who.caller, std::move(request));
                return Response::json(200, jobJson(view, baseUrlFor(req, base), g));
            });
    };
    for (const std::string kind : {"text2img", "img2img", "inpaint"}) {
        const auto limit = kind == "text2img" ? Router::kDefaultBodyLimit : kImageBodyLimit;
        const auto summary = kind == "text2img"  ? "Generate images from a prompt"
                             : kind == "img2img" ? "Generate from an init image (strength)"
                                                 : "Repaint the white part of mask_image over init_image";
        router.add("POST", "/api/v6/images/" + kind, submit(kind), summary, limit);
        router.add("POST", "/api/v3/" + kind, submit(kind), std::string(summary) + " (v3 alias)", limit);
        router.add("POST", "/api/v6/realtime/" + kind, submit(kind),
                   std::string(summary) + " (realtime, default model)", limit);
    }

    auto fetch = authenticated(access, Credential::ApiKey,
                               [&g, base](const Request& req, const json& body, const service::Access& who) {
                                   const auto view = g.fetch(who.caller, requestId(req, body));
                                   return Response::json(200, jobJson(view, baseUrlFor(req, base), g));
                               });
    router.add("POST", "/api/v6/images/fetch", fetch, "Result of a request (body: request_id)");
    for (const std::string path : {"/api/v6/images/fetch/{id}", "/api/v3/fetch/{id}", "/api/v6/realtime/fetch/{id}"}) {
        router.add("POST", path, fetch, "Result of a request");
        router.add("GET", path, fetch, "Result of a request");
    }

    router.add(
        "POST", "/api/v6/images/cancel",
        authenticated(
            access, Credential::ApiKey,
            [&g](const Request& req, const json& body, const service::Access& who) {
                const auto id = requestId(req, body);
                g.cancel(who.caller, id);
                return Response::json(200, {{"status", "success"}, {"id", id}, {"message", "cancellation requested"}});
            }),
        "Cancel a queued or running request (body: request_id); it is not charged");

    auto listJobs = [&g, base](bool activeOnly) {
        return [&g, base, activeOnly](const Request& req, const json&, const service::Access& who) {
            const int limit = queryInt(req, "limit", 20, 1, 100);
            const int offset = queryInt(req, "offset", 0, 0, 1 << 30);
            json items = json::array();
            for (const auto& v : g.history(who.caller, limit, offset, activeOnly)) {
                auto item = jobJson(v, baseUrlFor(req, base), g, false);
                item["created_at"] = isoTime(v.job.createdAt);
                item["kind"] = v.job.kind;
                items.push_back(std::move(item));
            }
            return Response::json(
                200, {{"status", "success"}, {"total", g.historyTotal(who.caller, activeOnly)}, {"items", items}});
        };
    };
    router.add("GET", "/api/v1/history", authenticated(access, Credential::ApiKey, listJobs(false)),
               "The account's requests, newest first (limit, offset)");
    router.add("GET", "/api/v1/queue", authenticated(access, Credential::ApiKey, listJobs(true)),
               "The account's queued and running requests");
    router.add("DELETE", "/api/v1/history/{id}",
               authenticated(access, Credential::ApiKey,
                             [&g](const Request& req, const json& body, const service::Access& who) {
                                 g.remove(who.caller, requestId(req, body));
                                 return Response::json(200, {{"status", "success"}});
                             }),
               "Delete a finished request and its images");

    // Uploads spend the generation bucket, not the read one: each stores up to 5 MB for a day.
    auto upload = authenticated(
        access, Credential::ApiKeyGeneration,
        [&g, base](const Request& req, const json& body, const service::Access& who) {
            FieldReader r{body, {}};
            auto text = r.string("base64_string", 30u * 1024 * 1024);
            if (!text) text = r.string("image", 30u * 1024 * 1024);  // the v3 base64_crop spelling
            if (!text) text = r.string("init_image", 30u * 1024 * 1024);
            r.check();
            if (!text) throw validationError({{"base64_string", {"is required"}}});
            const auto bytes = decodeBase64(*text);
            if (!bytes) throw validationError({{"base64_string", {"is not base64"}}});
            if (bytes->size() > 5u * 1024 * 1024) {
                throw validationError({{"base64_string", {"must decode to at most 5 MB"}}});
            }
            const auto token = g.upload(who.caller, *bytes);
            const auto link = baseUrlFor(req, base) + "/uploads/" + token;
            return Response::json(
                200, {{"status", "success"}, {"link", link}, {"output", json::array({link})}, {"upload_id", token}});
        });
    router.add("POST", "/api/v6/base64_to_url", upload,
               "Upload a base64 image (<= 5 MB); returns a link for init_image", 8u * 1024 * 1024);
    router.add("POST", "/api/v3/base64_crop", upload, "Upload a base64 image (v3 alias)", 8u * 1024 * 1024);

    router.add(
        "GET", "/images/{file}",
        [&g](const Request& req) {
            auto file = req.pathParams.at("file");
            if (file.size() > 4 && file.ends_with(".png")) file.resize(file.size() - 4);
            if (auto link = g.imageRedirect(file)) {  // a bucket that serves it (pre-signed, short-lived)
                Response r;
                r.status = 302;
                r.headers["Location"] = std::move(*link);
                r.headers["Cache-Control"] = "private, no-store";  // the link expires; the image link does not
                return r;
            }
            const auto bytes = g.image(file);
            if (!bytes) return Response::error(404, "no such image (it may have expired)");
            Response r;
            r.headers["Content-Type"] = "image/png";
            r.headers["Cache-Control"] = "private, max-age=86400";
            r.body.assign(bytes->begin(), bytes->end());
            return r;
        },
        "A generated image, by its unguessable link");
    router.add(
        "GET", "/uploads/{token}",
        [&g](const Request& req) {
            const auto up = g.uploaded(req.pathParams.at("token"));
            if (!up) return Response::error(404, "no such upload (it may have expired)");
            Response r;
            r.headers["Content-Type"] = "application/octet-stream";
            r.body.assign(up->second.begin(), up->second.end());
            return r;
        },
        "An uploaded image, by its unguessable link");
}

}  // namespace easel::server
