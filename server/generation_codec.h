#pragma once
// JSON <-> typed generation requests and job views, spelled as the hosted API spells them.

#include <nlohmann/json.hpp>
#include <string>

#include "http_types.h"
#include "service/generation_service.h"

namespace easel::server {

// Parses a text2img / img2img / inpaint body leniently (numbers as strings, "yes"/"no"); images are
// base64 (raw or data URL) or a link to an upload on this server. Throws field-level 400s.
service::SubmitRequest parseSubmit(const nlohmann::json& body, const std::string& kind,
                                   const service::GenerationService& generation, std::int64_t callerId);

// "success" / "processing" / "failed" / "cancelled" in the hosted API's shapes.
nlohmann::json jobJson(const service::JobView& view, const std::string& baseUrl, const service::GenerationService& g);

std::string baseUrlFor(const Request& req, const std::string& configured);

}  // namespace easel::server
