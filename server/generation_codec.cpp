#include "server/generation_codec.h"

#include "common/base64.h"
#include "common/lora_tags.h"
#include "common/text.h"
#include "net/http_client.h"
#include "server/api_support.h"

namespace easel::server {
namespace {

using nlohmann::json;

std::optional<jobs::Bytes> readImage(FieldReader& r, const std::string& name, const service::GenerationService& g,
                                     std::int64_t callerId, const ImageFetcher& fetcher, const std::string& baseUrl) {
    const auto value = r.string(name, 40u * 1024 * 1024);
    if (!value || value->empty()) return std::nullopt;
    return readImageValue(r, name, {}, *value, g, callerId, fetcher, baseUrl);
}

}  // namespace

std::optional<jobs::Bytes> readImageValue(FieldReader& r, const std::string& name, const std::string& label,
                                          const std::string& text, const service::GenerationService& g,
                                          std::int64_t callerId, const ImageFetcher& fetcher,
                                          const std::string& baseUrl) {
    auto problem = [&](const std::string& what) { r.errors[name].push_back(label + what); };
    if (text.rfind("http://", 0) == 0 || text.rfind("https://", 0) == 0) {
        const auto ownUploads = baseUrl + "/uploads/";
        if (!baseUrl.empty() && text.rfind(ownUploads, 0) == 0) {
            const auto token = text.substr(ownUploads.size());
            if (auto up = g.uploaded(token); up && up->first == callerId) return std::move(up->second);
            problem("links to an upload that does not exist, has expired or is not yours");
            return std::nullopt;
        }
        const auto ownImages = baseUrl + "/images/";
        if (!baseUrl.empty() && text.rfind(ownImages, 0) == 0) {
            // Read from the store, not over HTTP: the server's own address is usually loopback or private,
            // which the outbound policy refuses. The token is the same capability the public link is.
            auto token = text.substr(ownImages.size());
            if (token.ends_with(".png")) token.resize(token.size() - 4);
            if (auto bytes = g.image(token)) return bytes;
            problem("links to an image of this server that does not exist or has expired");
            return std::nullopt;
        }
        try {
            net::OutboundRequest fetch;
            fetch.url = text;
            fetch.timeout = fetcher.timeout;
            fetch.maxBody = 20u * 1024 * 1024;
            const net::UrlPolicy policy{fetcher.allowPrivate};
            const auto response =
                fetcher.pool != nullptr ? fetcher.pool->fetch(fetch, policy) : net::httpFetch(fetch, policy);
            if (response.status != 200) {
                problem("could not be fetched: HTTP " + std::to_string(response.status));
                return std::nullopt;
            }
            return jobs::Bytes(response.body.begin(), response.body.end());
        } catch (const net::OutboundError& e) {
            if (e.kind() == net::OutboundError::Kind::Busy || e.kind() == net::OutboundError::Kind::Cancelled) {
                // Not the link's fault: the server is full or stopping. 503 with a time to come back.
                ServiceError busy(ErrorCode::Unavailable, name + ": " + label + e.what());
                busy.retryAfterSeconds = 5;
                throw busy;
            }
            problem(std::string("could not be fetched: ") + e.what());
            return std::nullopt;
        }
    }
    auto bytes = decodeBase64(text);
    if (!bytes) problem("is neither base64 image data nor a link to an upload");
    return bytes;
}

namespace {

std::string statusWord(storage::JobStatus s) {
    switch (s) {
        case storage::JobStatus::Queued:
        case storage::JobStatus::Running:
            return "processing";
        case storage::JobStatus::Succeeded:
            return "success";
        case storage::JobStatus::Failed:
            return "failed";
        case storage::JobStatus::Cancelled:
            return "cancelled";
    }
    return "processing";
}

// A comma-separated list ("a,b") or a JSON array of strings; ids trimmed, empty entries dropped.
std::vector<std::string> idList(FieldReader& r, const std::string& name) {
    std::vector<std::string> out;
    const auto it = r.body.find(name);
    if (it == r.body.end() || it->is_null()) return out;
    auto add = [&](std::string_view id) {
        if (const auto trimmed = trimBlanks(id); !trimmed.empty()) out.emplace_back(trimmed);
    };
    if (it->is_array()) {
        for (const auto& v : *it) {
            if (!v.is_string()) {
                r.errors[name].push_back("must be a string or a list of strings");
                out.clear();
                return out;
            }
            add(v.get<std::string>());
        }
    } else if (const auto text = r.string(name, 2000)) {
        for (const auto piece : splitOn(*text, ',')) add(piece);
    }
    return out;
}

// lora_model + lora_strength (one number for all, or one per LoRA, as a number, a comma-separated
// string or an array) and embeddings_model, as the hosted API spells them.
void readAdapters(FieldReader& r, jobs::GenerationParams& p) {
    const auto ids = idList(r, "lora_model");
    std::vector<double> strengths;
    if (const auto it = r.body.find("lora_strength"); it != r.body.end() && !it->is_null()) {
        std::optional<std::vector<double>> parsed;
        if (it->is_number()) {
            parsed = std::vector<double>{it->get<double>()};
        } else if (it->is_string()) {
            parsed = parseStrengthList(it->get<std::string>());
        } else if (it->is_array()) {
            parsed.emplace();
            for (const auto& v : *it) {
                if (!v.is_number()) {
                    parsed.reset();
                    break;
                }
                parsed->push_back(v.get<double>());
            }
        }
        if (!parsed) {
            r.errors["lora_strength"].push_back("must be a number or a comma-separated list of numbers");
        } else {
            strengths = *parsed;
        }
    }
    if (!strengths.empty() && strengths.size() != 1 && strengths.size() != ids.size()) {
        r.errors["lora_strength"].push_back("must be one number, or one per LoRA in lora_model (" +
                                            std::to_string(ids.size()) + ")");
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const double s = strengths.empty() ? 1.0 : strengths[strengths.size() == 1 ? 0 : i];
        p.loras.push_back({ids[i], s, s});
    }
    p.embeddings = idList(r, "embeddings_model");
}

}  // namespace

service::SubmitRequest parseSubmit(const json& body, const std::string& kind, const service::GenerationService& g,
                                   std::int64_t callerId, const ImageFetcher& fetcher, const std::string& baseUrl) {
    service::SubmitRequest out;
    auto& p = out.params;
    p.kind = kind;
    FieldReader r{body, {}};
    p.modelId = r.string("model_id", 200).value_or("");
    p.prompt = r.string("prompt", 20'000).value_or("");
    p.negativePrompt = r.string("negative_prompt", 20'000).value_or("");
    auto intField = [&](const char* name, int fallback) { return r.smallInteger(name, fallback); };
    p.width = intField("width", 0);
    p.height = intField("height", 0);
    p.samples = intField("samples", 1);
    p.steps = intField("num_inference_steps", intField("steps", 0));
    p.guidance = r.number("guidance_scale").value_or(-1.0);
    if (const auto seed = r.integer("seed"); seed && *seed != -1) p.seed = *seed;  // -1 / null: random
    p.scheduler = r.string("scheduler", 100).value_or("");
    p.karras = r.boolean("use_karras_sigmas").value_or(false);
    p.clipSkip = intField("clip_skip", 1);
    for (const auto& [name, field] : SizeConditioning::kFields) p.sizes.*field = intField(std::string(name).c_str(), 0);
    readAdapters(r, p);
    p.strength = r.number("strength").value_or(r.number("prompt_strength").value_or(0.75));
    p.base64 = r.boolean("base64").value_or(false);
    out.webhook = r.string("webhook", 2000).value_or("");
    if (!out.webhook.empty() && out.webhook.rfind("http://", 0) != 0 && out.webhook.rfind("https://", 0) != 0) {
        r.errors["webhook"].push_back("must be an http:// or https:// URL");
    }
    if (!out.webhook.empty()) p.linkBase = baseUrl;
    out.trackId = r.string("track_id", 200).value_or("");
    out.temp = r.boolean("temp").value_or(false);
    out.instant = r.boolean("instant_response").value_or(false);
    if (kind != "text2img") {
        out.initImage = readImage(r, "init_image", g, callerId, fetcher, baseUrl);
        if (kind == "inpaint") out.maskImage = readImage(r, "mask_image", g, callerId, fetcher, baseUrl);
    }
    r.check();
    return out;
}

std::string baseUrlFor(const Request& req, const std::string& configured) {
    if (!configured.empty()) return configured;
    auto host = req.header("Host");
    if (host.empty() || host.find_first_of("/\\ @") != std::string::npos) host = "127.0.0.1";
    return "http://" + host;
}

json jobJson(const service::JobView& v, const std::string& baseUrl, const service::GenerationService& g,
             bool allowBase64) {
    const auto& job = v.job;
    json out{{"status", statusWord(job.status)}, {"id", job.id}};
    json meta = job.meta.empty() ? json::object() : json::parse(job.meta, nullptr, false);
    if (!meta.is_object()) meta = json::object();
    if (meta.empty()) {
        const auto& p = v.params;
        meta = {{"model_id", p.modelId},
                {"prompt", p.prompt},
                {"negative_prompt", p.negativePrompt},
                {"W", p.width},
                {"H", p.height},
                {"width", p.width},
                {"height", p.height},
                {"steps", p.steps},
                {"num_inference_steps", p.steps},
                {"guidance_scale", p.guidance},
                {"n_samples", p.samples},
                {"scheduler", p.scheduler},
                {"use_karras_sigmas", p.karras},
                {"seed", p.seed ? json(*p.seed) : json(nullptr)}};
        if (p.kind != "text2img") meta["strength"] = p.strength;
    }
    out["meta"] = meta;
    if (!job.trackId.empty()) out["track_id"] = job.trackId;
    const auto fetchUrl = baseUrl + "/api/v6/images/fetch/" + std::to_string(job.id);
    switch (job.status) {
        case storage::JobStatus::Succeeded: {
            json output = json::array();
            for (const auto& img : v.images) {
                if (v.params.base64 && allowBase64) {
                    // An image past its expiry that the hourly sweep has not removed yet is left out.
                    if (const auto bytes = g.image(img.token))
                        output.push_back("data:image/png;base64," + encodeBase64(*bytes));
                } else {
                    output.push_back(baseUrl + "/images/" + img.token + ".png");
                }
            }
            out["output"] = output;
            out["proxy_links"] = output;
            out["generationTime"] = job.generationSeconds;
            if (output.empty() && job.images > 0) {
                // Clients read output[0] on "success": an answer without images must not say so.
                out["status"] = "error";
                setMessage(out, "the images of this request have expired");
            }
            break;
        }
        case storage::JobStatus::Queued:
        case storage::JobStatus::Running:
            out["eta"] = v.etaSeconds;
            setMessage(out, "Try to fetch request after given estimated time");
            out["fetch_result"] = fetchUrl;
            out["future_links"] = json::array();
            // Where the images will be once done (404 until then); the hosted API's future_links.
            for (const auto& token : v.params.imageTokens)
                out["future_links"].push_back(baseUrl + "/images/" + token + ".png");
            out["output"] = json::array();
            out["queue_position"] = v.queuePosition;
            out["tip"] = job.status == storage::JobStatus::Queued ? "queued" : "running";
            if (v.progress) {
                out["progress"] = {{"step", v.progress->step},
                                   {"total", v.progress->total},
                                   {"sample", v.progress->sample},
                                   {"samples", v.progress->samples}};
                // Easel's addition: what the image is becoming, as a small PNG (not in the hosted API).
                if (v.progress->preview)
                    out["progress"]["preview"] = "data:image/png;base64," + encodeBase64(*v.progress->preview);
            }
            break;
        case storage::JobStatus::Failed:
            setMessage(out, "generation failed: " + job.error + " (the request was not charged)");
            out["output"] = json::array();
            break;
        case storage::JobStatus::Cancelled:
            setMessage(out, "the request was cancelled (and not charged)");
            out["output"] = json::array();
            break;
    }
    return out;
}

}  // namespace easel::server
