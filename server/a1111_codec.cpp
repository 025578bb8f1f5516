#include "server/a1111_codec.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/base64.h"
#include "common/infotext.h"
#include "common/request_limits.h"
#include "common/sampler_names.h"
#include "server/api_support.h"

namespace easel::server {
namespace {

using nlohmann::json;
using Errors = std::map<std::string, std::vector<std::string>>;

constexpr std::size_t kMaxImageText = 40u * 1024 * 1024;

std::string lowered(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// sampler_name (or the older sampler_index, which A1111 also takes as a name) and scheduler
// ("Automatic" or "Karras": A1111 1.9 split the schedule out of names such as "DPM++ 2M Karras",
// which are still accepted).
void readSampler(FieldReader& r, jobs::GenerationParams& p) {
    auto name = r.string("sampler_name", 100);
    const char* field = "sampler_name";
    if (!name || name->empty()) {
        name = r.string("sampler_index", 100);
        field = "sampler_index";
    }
    const auto schedule = lowered(r.string("scheduler", 100).value_or(""));
    bool karras = schedule == "karras";
    if (!schedule.empty() && schedule != "karras" && schedule != "automatic") {
        r.errors["scheduler"].push_back("'" + r.body.value("scheduler", std::string()) +
                                        "' is not a schedule this server runs: use \"Automatic\" or \"Karras\" "
                                        "(GET /sdapi/v1/schedulers)");
    }
    if (!name || name->empty()) {
        p.karras = karras;  // the engine's default sampler
        return;
    }
    const auto entry = findSamplerName(*name);
    if (!entry) {
        r.errors[field].push_back("'" + *name +
                                  "' is not a sampler on this server (GET /sdapi/v1/samplers lists them, e.g. "
                                  "\"Euler a\" or \"DPM++ 2M\")");
        return;
    }
    karras = karras || entry->karras;
    if (karras && !findSampler(entry->diffusersClass, entry->algorithmType, true)) {
        r.errors["scheduler"].push_back("'" + *name + "' has no Karras schedule on this server: use \"Automatic\"");
        return;
    }
    // The plain A1111 name plus the Karras flag, as the native API takes them.
    const auto plain = findSampler(entry->diffusersClass, entry->algorithmType, false);
    p.scheduler = plain && !plain->a1111.empty() ? std::string(plain->a1111) : apiSchedulerName(*entry);
    p.karras = karras;
}

// override_settings: the model (by the title /sdapi/v1/sd-models gives, with or without A1111's
// " [hash]" suffix) and CLIP skip; other settings have no meaning here and are ignored.
void readOverrides(FieldReader& r, jobs::GenerationParams& p, const std::string& defaultModel) {
    p.modelId = defaultModel;
    const auto it = r.body.find("override_settings");
    if (it == r.body.end() || it->is_null()) return;
    if (!it->is_object()) {
        r.errors["override_settings"].push_back("must be an object");
        return;
    }
    FieldReader o{*it, {}};
    if (auto model = o.string("sd_model_checkpoint", 300); model && !model->empty()) {
        if (const auto bracket = model->rfind(" ["); bracket != std::string::npos && model->back() == ']') {
            model->resize(bracket);
        }
        p.modelId = *model;
    }
    if (const auto skip = o.integer("CLIP_stop_at_last_layers")) {
        p.clipSkip = static_cast<int>(std::clamp<std::int64_t>(*skip, -1000, 1000));
    }
    for (auto& [name, problems] : o.errors) {
        for (auto& problem : problems) r.errors["override_settings." + name].push_back(std::move(problem));
    }
}

std::optional<jobs::Bytes> base64Image(FieldReader& r, const std::string& field, const std::string& text) {
    auto bytes = decodeBase64(text);
    if (!bytes || bytes->empty()) {
        r.errors[field].push_back("is not base64 image data");
        return std::nullopt;
    }
    return bytes;
}

void readImages(FieldReader& r, service::SubmitRequest& out) {
    auto& p = out.params;
    p.kind = "img2img";
    p.strength = r.number("denoising_strength").value_or(0.75);
    const auto it = r.body.find("init_images");
    if (it == r.body.end() || it->is_null() || (it->is_array() && it->empty())) {
        r.errors["init_images"].push_back("must hold one base64 image");
    } else if (!it->is_array() || !it->front().is_string()) {
        r.errors["init_images"].push_back("must be a list of base64 images");
    } else if (it->front().get_ref<const std::string&>().size() > kMaxImageText) {
        r.errors["init_images"].push_back("must be at most 40 MB of base64");
    } else {
        // A1111 uses the first one (more only for batches of init images, which have no meaning here).
        out.initImage = base64Image(r, "init_images", it->front().get<std::string>());
    }
    const auto mask = r.string("mask", kMaxImageText);
    if (!mask || mask->empty()) return;
    p.kind = "inpaint";
    out.maskImage = base64Image(r, "mask", *mask);
    // inpainting_mask_invert: 1 repaints the black part instead of the white (the service flips it).
    out.invertMask = r.integer("inpainting_mask_invert").value_or(0) == 1;
    // mask_blur, inpainting_fill, inpaint_full_res(_padding) and resize_mode are accepted and ignored:
    // the inpainting pipeline keeps the unmasked pixels and repaints the mask at the full image size.
}

int intOr(const json& body, const char* name, int fallback) {
    FieldReader r{body, {}};
    const auto v = r.integer(name);
    return v && *v > 0 && *v < 1000 ? static_cast<int>(*v) : fallback;
}

}  // namespace

std::string a1111Timestamp(std::int64_t seconds) {
    const std::time_t t = seconds;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char out[32];
    std::strftime(out, sizeof out, "%Y%m%d%H%M%S", &tm);
    return out;
}

namespace {

std::string errorKind(ErrorCode code) {
    switch (code) {
        case ErrorCode::BadRequest:
            return "ValidationError";
        case ErrorCode::Unauthorized:
            return "Unauthorized";
        case ErrorCode::PaymentRequired:
            return "QuotaExceeded";
        case ErrorCode::Forbidden:
            return "Forbidden";
        case ErrorCode::NotFound:
            return "NotFound";
        case ErrorCode::Conflict:
            return "Conflict";
        case ErrorCode::TooLarge:
            return "PayloadTooLarge";
        case ErrorCode::TooManyRequests:
            return "TooManyRequests";
        case ErrorCode::Unavailable:
            return "ServiceUnavailable";
        case ErrorCode::InsufficientStorage:
            return "InsufficientStorage";
        case ErrorCode::Internal:
            return "InternalError";
    }
    return "InternalError";
}

// The service names fields as the native API spells them; an A1111 client sent other names.
std::string a1111FieldName(const std::string& field) {
    static const std::map<std::string, std::string> kNames{{"init_image", "init_images"},
                                                           {"mask_image", "mask"},
                                                           {"guidance_scale", "cfg_scale"},
                                                           {"num_inference_steps", "steps"},
                                                           {"samples", "batch_size"},
                                                           {"strength", "denoising_strength"},
                                                           {"scheduler", "sampler_name"},
                                                           {"model_id", "override_settings.sd_model_checkpoint"},
                                                           {"clip_skip", "override_settings.CLIP_stop_at_last_layers"}};
    const auto it = kNames.find(field);
    return it == kNames.end() ? field : it->second;
}

}  // namespace

service::SubmitRequest parseA1111Generation(const json& body, bool img2img, const std::string& defaultModel) {
    service::SubmitRequest out;
    auto& p = out.params;
    FieldReader r{body, {}};
    p.prompt = r.string("prompt", 20'000).value_or("");
    p.negativePrompt = r.string("negative_prompt", 20'000).value_or("");
    auto intField = [&](const char* name, int fallback) { return r.smallInteger(name, fallback); };
    p.width = intField("width", 0);
    p.height = intField("height", 0);
    p.steps = intField("steps", 0);
    p.guidance = r.number("cfg_scale").value_or(-1.0);
    // A1111 makes batch_size images n_iter times; here they are one job of batch_size * n_iter images.
    const int batch = intField("batch_size", 1);
    const int iterations = intField("n_iter", 1);
    if (batch < 1) r.errors["batch_size"].push_back("must be at least 1");
    if (iterations < 1) r.errors["n_iter"].push_back("must be at least 1");
    if (batch >= 1 && iterations >= 1 && !limits::kSamples.contains(batch * iterations)) {
        r.errors["batch_size"].push_back("times n_iter must be " + limits::kSamples.describe() +
                                         " (images per request), not " + std::to_string(batch * iterations));
    }
    p.samples = std::max(1, batch * iterations);
    if (const auto seed = r.integer("seed"); seed && *seed != -1) p.seed = *seed;  // -1: random
    readSampler(r, p);
    readOverrides(r, p, defaultModel);
    if (img2img) readImages(r, out);
    r.check();
    return out;
}

A1111Sampler a1111SamplerOf(const jobs::GenerationParams& p) {
    A1111Sampler s;
    s.name = p.scheduler.empty() ? std::string() : a1111SamplerName(p.scheduler, false);
    s.scheduler = p.karras ? "Karras" : "Automatic";
    return s;
}

json a1111GenerationJson(const service::JobView& v, const std::vector<jobs::Bytes>& images,
                         const std::vector<std::string>& infotextsOfImages, const json& requestBody, bool img2img) {
    const auto& p = v.params;
    json parameters = requestBody;
    parameters.erase("key");
    FieldReader r{requestBody, {}};
    if (img2img && !r.boolean("include_init_images").value_or(false)) {
        parameters["init_images"] = nullptr;
        parameters["mask"] = nullptr;
    }
    json encoded = json::array();
    json infotexts = json::array();
    const bool sendImages = r.boolean("send_images").value_or(true);
    for (const auto& png : images) {
        if (sendImages) encoded.push_back(encodeBase64(png));
    }
    for (const auto& text : infotextsOfImages) infotexts.push_back(text);
    auto sampler = a1111SamplerOf(p);
    if (sampler.name.empty() && !infotexts.empty()) {
        // The engine's default sampler: as the image's own infotext names it.
        sampler.name = Infotext::parse(infotexts.front().get<std::string>()).fields["Sampler"];
    }
    const std::int64_t seed = p.seed.value_or(-1);
    json seeds = json::array();
    json prompts = json::array();
    json negatives = json::array();
    json subseeds = json::array();
    const auto prompt = r.string("prompt", 20'000).value_or(p.prompt);  // with its <lora:...> tags
    for (int i = 0; i < p.samples; ++i) {
        seeds.push_back(seed + i);
        prompts.push_back(prompt);
        negatives.push_back(p.negativePrompt);
        subseeds.push_back(-1);
    }
    json extra = json::object();
    if (p.karras) extra["Schedule type"] = "Karras";
    const json info{{"prompt", prompt},
                    {"all_prompts", prompts},
                    {"negative_prompt", p.negativePrompt},
                    {"all_negative_prompts", negatives},
                    {"seed", seed},
                    {"all_seeds", seeds},
                    {"subseed", -1},
                    {"all_subseeds", subseeds},
                    {"subseed_strength", 0},
                    {"width", p.width},
                    {"height", p.height},
                    {"sampler_name", sampler.name},
                    {"scheduler", sampler.scheduler},
                    {"cfg_scale", p.guidance},
                    {"steps", p.steps},
                    {"batch_size", intOr(requestBody, "batch_size", 1)},
                    {"n_iter", intOr(requestBody, "n_iter", 1)},
                    {"restore_faces", false},
                    {"face_restoration_model", nullptr},
                    {"sd_model_name", p.modelId},
                    {"sd_model_hash", nullptr},
                    {"sd_vae_name", nullptr},
                    {"sd_vae_hash", nullptr},
                    {"seed_resize_from_w", -1},
                    {"seed_resize_from_h", -1},
                    {"denoising_strength", img2img ? json(p.strength) : json(nullptr)},
                    {"extra_generation_params", extra},
                    {"index_of_first_image", 0},
                    {"infotexts", infotexts},
                    {"styles", json::array()},
                    {"job_timestamp", a1111Timestamp(v.job.createdAt)},
                    {"clip_skip", p.clipSkip},
                    {"is_using_inpainting_conditioning", p.kind == "inpaint"},
                    {"version", "easel"},
                    {"easel_request_id", v.job.id}};
    return {{"images", encoded}, {"parameters", parameters}, {"info", info.dump()}};
}

ServiceError withA1111FieldNames(const ServiceError& e) {
    if (e.fieldErrors.empty()) return e;
    Errors renamed;
    for (const auto& [field, problems] : e.fieldErrors) {
        auto& to = renamed[a1111FieldName(field)];
        to.insert(to.end(), problems.begin(), problems.end());
    }
    auto out = validationError(std::move(renamed));
    out.retryAfterSeconds = e.retryAfterSeconds;
    return out;
}

Response a1111ErrorResponse(const ServiceError& e) {
    const std::string message = e.what();
    const int status = e.code() == ErrorCode::BadRequest ? 422 : httpStatus(e.code());
    json body{{"error", errorKind(e.code())}, {"detail", message}, {"body", ""}, {"errors", message}};
    if (!e.fieldErrors.empty()) body["field_errors"] = e.fieldErrors;
    if (e.retryAfterSeconds) body["retry_after"] = *e.retryAfterSeconds;
    auto r = Response::json(status, body);
    if (e.retryAfterSeconds) r.headers["Retry-After"] = std::to_string(*e.retryAfterSeconds);
    if (status == 401) r.headers["WWW-Authenticate"] = "Basic realm=\"easel\", charset=\"UTF-8\"";
    return r;
}

json a1111PngInfo(std::map<std::string, std::string> chunks) {
    std::string text;
    if (const auto it = chunks.find("parameters"); it != chunks.end()) {
        text = it->second;
        chunks.erase(it);
    }
    json parameters = json::object();
    if (!text.empty()) {
        const auto parsed = Infotext::parse(text);
        parameters["Prompt"] = parsed.prompt;
        parameters["Negative prompt"] = parsed.negativePrompt;
        for (const auto& [key, value] : parsed.fields) parameters[key] = value;
        // A1111's parse_generation_parameters splits "Size: 512x768" into Size-1 and Size-2.
        if (const auto it = parsed.fields.find("Size"); it != parsed.fields.end()) {
            if (const auto x = it->second.find('x'); x != std::string::npos) {
                parameters["Size-1"] = it->second.substr(0, x);
                parameters["Size-2"] = it->second.substr(x + 1);
            }
        }
    }
    json items = json::object();
    for (const auto& [key, value] : chunks) items[key] = value;
    return {{"info", text}, {"items", items}, {"parameters", parameters}};
}

}  // namespace easel::server
