#pragma once
// GET /metrics in Prometheus' text format (an admin key as Bearer, as Prometheus' `authorization`
// setting sends it): the queue, jobs by status, images generated, denoising step times, requests waiting
// and rate-limit refusals.

#include "jobs/job_runner.h"
#include "server/router.h"
#include "service/access_control.h"
#include "service/generation_service.h"

namespace easel::server {

void registerMetricsRoutes(Router& router, service::AccessControl& access, service::GenerationService& generation,
                           jobs::JobRunner& runner);

}  // namespace easel::server
