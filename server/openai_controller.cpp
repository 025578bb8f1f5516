#include "server/openai_controller.h"

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "server/api_support.h"
#include "server/authenticated.h"
#include "server/generation_codec.h"
#include "server/multipart.h"

namespace easel::server {

using nlohmann::json;

namespace {

// Easel's field names as OpenAI's clients know them.
std::string openAiParam(const std::string& field) {
    if (field == "init_image") return "image";
    if (field == "mask_image") return "mask";
    if (field == "samples") return "n";
    if (field == "width" || field == "height") return "size";
    if (field == "model_id") return "model";
    return field;
}

// {"error": {"message", "type", "param", "code"}}, with OpenAI's statuses: a used-up quota is its 429
// "insufficient_quota", not 402.
Response openAiError(const ServiceError& e) {
    int status = httpStatus(e.code());
    std::string type = status >= 500 ? "server_error" : "invalid_request_error";
    json code = nullptr;
    json param = nullptr;
    std::string message = e.what();
    if (!e.fieldErrors.empty()) {
        message.clear();
        for (const auto& [field, problems] : e.fieldErrors) {
            if (param.is_null()) param = openAiParam(field);
            for (const auto& p : problems) message += (message.empty() ? "" : "; ") + openAiParam(field) + " " + p;
        }
    }
    switch (e.code()) {
        case ErrorCode::Unauthorized:
            code = "invalid_api_key";
            break;
        case ErrorCode::PaymentRequired:
            status = 429;
            type = code = "insufficient_quota";
            break;
        case ErrorCode::TooManyRequests:
            type = "requests";
            code = "rate_limit_exceeded";
            break;
        case ErrorCode::NotFound:
            code = "not_found";
            break;
        default:
            break;
    }
    auto r =
        Response::json(status, {{"error", {{"message", message}, {"type", type}, {"param", param}, {"code", code}}}});
    if (e.retryAfterSeconds) r.headers["Retry-After"] = std::to_string(*e.retryAfterSeconds);
    return r;
}

using OpenAiHandler = std::function<Response(const Request&, const service::Access&)>;

// The key from `Authorization: Bearer` (or X-API-Key), the rate-limit headers on every answer, and every
// error in OpenAI's shape. `generation`: the request spends the plan's generation bucket.
Handler openAiRoute(service::AccessControl& access, bool generation, OpenAiHandler handler) {
    return [&access, generation, handler = std::move(handler)](const Request& req) {
        quota::RateDecision rate;
        rate.limit = -1;
        Response r;
        try {
            const auto key = apiKeyFrom(req, json::object());
            if (key.empty()) {
                throw ServiceError(ErrorCode::Unauthorized,
                                   "no API key: send it as 'Authorization: Bearer <key>' (your Easel API key)");
            }
            const auto who =
                generation ? access.byKey(key, &rate, service::RateClass::Generation) : access.byKey(key, &rate);
            r = handler(req, who);
        } catch (const ServiceError& e) {
            r = openAiError(e);
        }
        if (rate.limit >= 0) addRateLimitHeaders(r, rate);
        return r;
    };
}

// The request's fields, from a JSON body or a multipart form; files stay apart.
struct ImageForm {
    json fields = json::object();
    std::optional<jobs::Bytes> image;
    std::optional<jobs::Bytes> mask;
};

ImageForm readForm(const Request& req, bool multipartExpected) {
    ImageForm form;
    const auto contentType = req.header("Content-Type");
    if (!isMultipartForm(contentType)) {
        if (multipartExpected) {
            throw validationError({{"image",
                                    {"is required: send the request as multipart/form-data with the image "
                                     "file in the 'image' field"}}});
        }
        form.fields = jsonBody(req);
        return form;
    }
    for (auto& part : parseMultipartForm(contentType, req.body)) {
        auto bytes = [&] { return jobs::Bytes(part.body.begin(), part.body.end()); };
        if (part.name == "image" || part.name == "image[]") {
            if (form.image) throw validationError({{"image", {"takes one image here"}}});
            form.image = bytes();
        } else if (part.name == "mask") {
            form.mask = bytes();
        } else if (part.name == "n") {
            // Form values are text: numbers become numbers so that FieldReader reads them like JSON.
            const auto v = json::parse(part.body, nullptr, false);
            form.fields[part.name] = v.is_number_integer() ? v : json(part.body);
        } else {
            form.fields[part.name] = part.body;
        }
    }
    return form;
}

struct ImageOptions {
    std::string responseFormat = "url";
};

// prompt, model, n, size, response_format (quality, style, user and the like are accepted and have no
// meaning here, as with other OpenAI-compatible servers).
ImageOptions readOptions(const json& fields, service::SubmitRequest& s, bool promptRequired) {
    FieldReader r{fields, {}};
    auto& p = s.params;
    p.prompt = r.string("prompt", 32'000).value_or("");
    if (promptRequired && p.prompt.empty()) r.errors["prompt"].push_back("is required");
    const auto model = r.string("model", 200).value_or("");
    // OpenAI's own model names mean "the server's default model".
    if (!model.empty() && model.rfind("dall-e", 0) != 0 && model.rfind("gpt-image", 0) != 0) p.modelId = model;
    p.samples = r.smallInteger("n", 1);
    const auto size = r.string("size", 20).value_or("auto");
    if (size != "auto") {
        const auto x = size.find('x');
        int w = 0, h = 0;
        try {
            if (x != std::string::npos) {
                std::size_t used = 0;
                w = std::stoi(size.substr(0, x), &used);
                if (used != x) w = 0;
                h = std::stoi(size.substr(x + 1), &used);
                if (used != size.size() - x - 1) h = 0;
            }
        } catch (const std::exception&) {
        }
        if (w <= 0 || h <= 0) {
            r.errors["size"].push_back("must look like 512x512 (width x height) or be auto");
        } else {
            p.width = w;
            p.height = h;
        }
    }
    ImageOptions o;
    o.responseFormat = r.string("response_format", 20).value_or("url");
    if (o.responseFormat != "url" && o.responseFormat != "b64_json") {
        r.errors["response_format"].push_back("must be url or b64_json");
    }
    r.check();
    s.instant = true;  // no brief wait in submit: the long wait below takes over
    s.requirePrompt = promptRequired;
    s.sizeFromInitImage = true;  // edits and variations keep the input's size by default
    p.base64 = false;
    return o;
}

// Submits, waits for the images and answers {"created", "data": [{"url"} | {"b64_json"}]}.
Response runAndAnswer(service::GenerationService& g, const service::Access& who, service::SubmitRequest s,
                      const ImageOptions& o, const std::string& baseUrl, std::chrono::milliseconds waitLimit) {
    auto slot = g.reserveLongWait();
    if (!slot) {
        ServiceError e(ErrorCode::Unavailable, "too many requests are waiting for their images; try again shortly");
        e.retryAfterSeconds = 5;
        throw e;
    }
    const auto accepted = g.submit(who.caller, std::move(s));
    auto v = g.awaitJob(who.caller, accepted.job.id, *slot, waitLimit);
    switch (v.job.status) {
        case storage::JobStatus::Succeeded:
            break;
        case storage::JobStatus::Failed:
            throw ServiceError(ErrorCode::Internal, "generation failed: " + v.job.error + " (it was not charged)");
        case storage::JobStatus::Cancelled:
            throw ServiceError(ErrorCode::Internal, "the request was cancelled (and not charged)");
        default: {
            // The client gets an error, so the job must not be charged either (unless it just finished).
            try {
                g.cancel(who.caller, v.job.id);
            } catch (const ServiceError&) {
            }
            v = g.fetch(who.caller, v.job.id);
            if (v.job.status == storage::JobStatus::Succeeded) break;
            ServiceError e(ErrorCode::Unavailable, "the images were not done within " +
                                                       std::to_string(waitLimit.count() / 1000) +
                                                       " s; the request was cancelled and not charged");
            e.retryAfterSeconds = 30;
            throw e;
        }
    }
    json data = json::array();
    for (const auto& img : v.images) {
        if (o.responseFormat == "b64_json") {
            const auto bytes = g.image(img.token);
            if (!bytes) throw ServiceError(ErrorCode::Internal, "an image of the request is missing");
            data.push_back({{"b64_json", encodeBase64(*bytes)}, {"revised_prompt", v.params.prompt}});
        } else {
            data.push_back({{"url", baseUrl + "/images/" + img.token + ".png"}, {"revised_prompt", v.params.prompt}});
        }
    }
    return Response::json(200, {{"created", v.job.createdAt}, {"data", data}});
}

}  // namespace

void registerOpenAiRoutes(Router& router, service::AccessControl& access, service::GenerationService& g,
                          OpenAiRoutesOptions options) {
    const auto base = options.publicUrl;
    const auto waitLimit = options.waitLimit;
    router.add("POST", "/v1/images/generations",
               openAiRoute(access, true,
                           [&g, base, waitLimit](const Request& req, const service::Access& who) {
                               service::SubmitRequest s;
                               s.params.kind = "text2img";
                               const auto o = readOptions(readForm(req, false).fields, s, true);
                               return runAndAnswer(g, who, std::move(s), o, baseUrlFor(req, base), waitLimit);
                           }),
               "OpenAI Images API: create images from a prompt (model, prompt, n, size, response_format)");
    router.add("POST", "/v1/images/edits",
               openAiRoute(access, true,
                           [&g, base, waitLimit](const Request& req, const service::Access& who) {
                               auto form = readForm(req, true);
                               service::SubmitRequest s;
                               s.params.kind = "inpaint";
                               const auto o = readOptions(form.fields, s, true);
                               if (!form.image) throw validationError({{"image", {"is required"}}});
                               s.initImage = std::move(form.image);
                               s.maskImage = std::move(form.mask);
                               s.maskFromTransparency = true;
                               return runAndAnswer(g, who, std::move(s), o, baseUrlFor(req, base), waitLimit);
                           }),
               "OpenAI Images API: edit an image where it (or the mask) is transparent (multipart: image, mask, "
               "prompt, n, size, response_format)",
               16u * 1024 * 1024);
    router.add("POST", "/v1/images/variations",
               openAiRoute(access, true,
                           [&g, base, waitLimit](const Request& req, const service::Access& who) {
                               auto form = readForm(req, true);
                               service::SubmitRequest s;
                               s.params.kind = "img2img";
                               const auto o = readOptions(form.fields, s, false);
                               if (!form.image) throw validationError({{"image", {"is required"}}});
                               s.initImage = std::move(form.image);
                               s.params.strength = 0.6;  // keeps the composition, changes the details
                               return runAndAnswer(g, who, std::move(s), o, baseUrlFor(req, base), waitLimit);
                           }),
               "OpenAI Images API: variations of an image (multipart: image, n, size, response_format)",
               16u * 1024 * 1024);

    auto modelJson = [](const jobs::ModelDescription& m) {
        return json{{"id", m.id}, {"object", "model"}, {"created", 0}, {"owned_by", m.ownerId == 0 ? "easel" : "you"}};
    };
    router.add("GET", "/v1/models",
               openAiRoute(access, false,
                           [&g, modelJson](const Request&, const service::Access& who) {
                               json data = json::array();
                               for (const auto& m : g.models(who.caller)) {
                                   if (m.category == "stable_diffusion") data.push_back(modelJson(m));
                               }
                               return Response::json(200, {{"object", "list"}, {"data", data}});
                           }),
               "OpenAI: the models this key can generate with");
    router.add("GET", "/v1/models/{model}",
               openAiRoute(access, false,
                           [&g, modelJson](const Request& req, const service::Access& who) {
                               for (const auto& m : g.models(who.caller)) {
                                   if (m.id == req.pathParams.at("model") && m.category == "stable_diffusion") {
                                       return Response::json(200, modelJson(m));
                                   }
                               }
                               throw ServiceError(ErrorCode::NotFound,
                                                  "The model '" + req.pathParams.at("model") + "' does not exist");
                           }),
               "OpenAI: one model");
}

}  // namespace easel::server
