#pragma once
// OpenAI's Images API (/v1/images/generations, /edits, /variations, /v1/models), so that every OpenAI SDK
// works against Easel by changing its base URL. Synchronous like OpenAI's, but through the same queue,
// quota and rate limits as the native API; errors in OpenAI's {"error": {...}} shape.

#include <chrono>
#include <string>

#include "server/router.h"
#include "service/access_control.h"
#include "service/generation_service.h"

namespace easel::server {

struct OpenAiRoutesOptions {
    std::string publicUrl;  // the base of image links; empty: from the request's Host header
    std::chrono::milliseconds waitLimit{std::chrono::minutes(10)};  // the longest a request waits for its images
};

void registerOpenAiRoutes(Router& router, service::AccessControl& access, service::GenerationService& generation,
                          OpenAiRoutesOptions options = {});

}  // namespace easel::server
