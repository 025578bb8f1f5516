#pragma once
// The hosted Stable Diffusion API's generation endpoints (v6, v3 aliases, realtime), fetch, cancel,
// history, models, uploads, and the image files themselves.

#include <chrono>
#include <string>

#include "net/outbound_pool.h"
#include "server/router.h"
#include "service/access_control.h"
#include "service/generation_service.h"

namespace easel::server {

struct GenerationRoutesOptions {
    std::string publicUrl;                  // e.g. "https://easel.example.com"; empty: from the request's Host header
    bool allowPrivateImageUrls = false;     // init_image / mask_image URLs on private or loopback addresses
    net::OutboundPool* outbound = nullptr;  // where those URLs are fetched (nullptr: directly)
    std::chrono::milliseconds imageFetchTimeout{std::chrono::seconds(20)};
};

void registerGenerationRoutes(Router& router, service::AccessControl& access, service::GenerationService& generation,
                              GenerationRoutesOptions options = {});

}  // namespace easel::server
