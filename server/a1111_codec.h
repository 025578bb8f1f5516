#pragma once
// JSON <-> typed requests and answers in the AUTOMATIC1111 web UI API's spelling (/sdapi/v1/*):
// txt2img / img2img bodies, the {"images", "parameters", "info"} answer, the error shape, and the
// png-info parse. The controller (a1111_controller.cpp) holds the routes and the waiting.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/service_error.h"
#include "server/http_types.h"
#include "service/generation_service.h"

namespace easel::server {

// A txt2img / img2img body, read leniently as A1111 does (unknown fields are ignored). Absent sizes,
// steps and CFG scale take the model's defaults rather than A1111's (512x512, 50 steps), which suit
// SD 1.5 only. `defaultModel`: the caller's choice from POST /sdapi/v1/options, used when the body
// has no override_settings.sd_model_checkpoint. Throws field-level validation errors.
service::SubmitRequest parseA1111Generation(const nlohmann::json& body, bool img2img, const std::string& defaultModel);

// A1111's sampler name for a request: the plain sampler name, with the scheduler ("Karras") apart.
struct A1111Sampler {
    std::string name;       // "DPM++ 2M"
    std::string scheduler;  // "Automatic" or "Karras"
};
A1111Sampler a1111SamplerOf(const jobs::GenerationParams& params);

// The answer to a finished txt2img / img2img job: base64 PNGs, the request echoed, and the info JSON
// text (seeds, infotexts, sizes). `images` are the PNGs in order, `infotexts` their "parameters" texts;
// `requestBody` the body as sent.
nlohmann::json a1111GenerationJson(const service::JobView& view, const std::vector<jobs::Bytes>& images,
                                   const std::vector<std::string>& infotexts, const nlohmann::json& requestBody,
                                   bool img2img);

// The service's validation errors name the native API's fields (guidance_scale, init_image, ...):
// the same errors under the names an A1111 client sent (cfg_scale, init_images, ...).
ServiceError withA1111FieldNames(const ServiceError& e);

// {"error", "detail", "body", "errors"} as A1111 answers, with its status: validation errors are 422
// (FastAPI's), the rest as the native API maps them. A 401 carries WWW-Authenticate: Basic.
Response a1111ErrorResponse(const ServiceError& e);

// A1111's job_timestamp: "YYYYmmddHHMMSS" in UTC.
std::string a1111Timestamp(std::int64_t unixSeconds);

// POST /sdapi/v1/png-info: {"info": the parameters text, "items": the other text chunks,
// "parameters": the infotext as A1111's parse_generation_parameters spells it}.
// `chunks`: the image's text chunks (GenerationService::imageText).
nlohmann::json a1111PngInfo(std::map<std::string, std::string> chunks);

}  // namespace easel::server
