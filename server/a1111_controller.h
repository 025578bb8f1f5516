#pragma once
// The AUTOMATIC1111 web UI API (/sdapi/v1/*), for the clients written against it (Krita, Photoshop
// and GIMP plug-ins, bots, webuiapi): txt2img and img2img (inpainting with a mask), the model,
// sampler, scheduler and LoRA lists, options, progress, interrupt and png-info. Every generation goes
// through GenerationService like the native API's (the same queue, quota and rate limits); the key
// comes as "Authorization: Bearer <key>" or as the password of HTTP Basic (A1111's --api-auth).

#include <chrono>

#include "server/router.h"
#include "service/access_control.h"
#include "service/generation_service.h"

namespace easel::server {

struct A1111RoutesOptions {
    // A1111 answers txt2img / img2img only when the images are done, so each such request holds an
    // HTTP worker for its whole job; at most GenerationOptions::maxLongWaits of them (shared with the
    // OpenAI dialect) wait at once, more get 503 with Retry-After before anything is queued or charged.
    // A job not finished within `timeout` (a long queue) is cancelled, not charged, and answered 503.
    std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

void registerA1111Routes(Router& router, service::AccessControl& access, service::GenerationService& generation,
                         A1111RoutesOptions options = {});

}  // namespace easel::server
