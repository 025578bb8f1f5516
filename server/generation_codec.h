#pragma once
// JSON <-> typed generation requests and job views, spelled as the hosted API spells them.

#include <nlohmann/json.hpp>
#include <string>

#include "server/http_types.h"
#include "service/generation_service.h"

namespace easel::server {

// Parses a text2img / img2img / inpaint body leniently (numbers as strings, "yes"/"no"); images are
// base64 (raw or data URL) or a link to an upload on this server. Throws field-level 400s.
// `baseUrl`: this server's own base (links to /uploads/ under it are read locally).
service::SubmitRequest parseSubmit(const nlohmann::json& body, const std::string& kind,
                                   const service::GenerationService& generation, std::int64_t callerId,
                                   bool allowPrivateImageUrls = false, const std::string& baseUrl = {});

// "success" / "processing" / "failed" / "cancelled" in the hosted API's shapes.
// `allowBase64`: false for listings and webhooks, which always carry links (a page of base64 images
// could be hundreds of MB).
nlohmann::json jobJson(const service::JobView& view, const std::string& baseUrl, const service::GenerationService& g,
                       bool allowBase64 = true);

std::string baseUrlFor(const Request& req, const std::string& configured);

}  // namespace easel::server
