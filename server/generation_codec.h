#pragma once
// JSON <-> typed generation requests and job views, spelled as the hosted API spells them.

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "net/outbound_pool.h"
#include "server/api_support.h"
#include "server/http_types.h"
#include "service/generation_service.h"

namespace easel::server {

// Parses a text2img / img2img / inpaint body leniently (numbers as strings, "yes"/"no"); images are
// base64 (raw or data URL) or a link to an upload on this server. Throws field-level 400s.
// `baseUrl`: this server's own base (links to /uploads/ under it are read locally).
// How init_image / mask_image links to other hosts are fetched: on the outbound pool (never on the
// HTTP worker's own I/O, and refused as busy when the pool is full), within a deadline.
struct ImageFetcher {
    net::OutboundPool* pool = nullptr;  // nullptr: fetched directly (tools and tests without a backend)
    bool allowPrivate = false;          // links to private or loopback addresses
    // The whole fetch, time waiting for a pool thread, DNS and redirects included.
    std::chrono::milliseconds timeout{std::chrono::seconds(20)};
};

// One image value: base64 / data URL, a link to an upload on this server (".../uploads/<token>"), a link
// to an image this server generated (".../images/<token>.png", so results chain into img2img), or any
// other http(s) link, fetched under the outbound policy. nullopt, with the problem in r.errors[name]
// (after `label`, e.g. "image 3 "), when it cannot be read.
std::optional<jobs::Bytes> readImageValue(FieldReader& r, const std::string& name, const std::string& label,
                                          const std::string& text, const service::GenerationService& generation,
                                          std::int64_t callerId, const ImageFetcher& fetcher,
                                          const std::string& baseUrl);

service::SubmitRequest parseSubmit(const nlohmann::json& body, const std::string& kind,
                                   const service::GenerationService& generation, std::int64_t callerId,
                                   const ImageFetcher& fetcher = {}, const std::string& baseUrl = {});

// "success" / "processing" / "failed" / "cancelled" in the hosted API's shapes.
// `allowBase64`: false for listings and webhooks, which always carry links (a page of base64 images
// could be hundreds of MB).
nlohmann::json jobJson(const service::JobView& view, const std::string& baseUrl, const service::GenerationService& g,
                       bool allowBase64 = true);

std::string baseUrlFor(const Request& req, const std::string& configured);

}  // namespace easel::server
