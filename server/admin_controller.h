#pragma once
// Admin API (an admin account's API key): users and plans, and the enterprise-style server details.

#include "jobs/job_runner.h"
#include "models/model_installer.h"
#include "server/router.h"
#include "service/access_control.h"
#include "service/generation_service.h"

namespace easel::server {

void registerAdminRoutes(Router& router, service::AccessControl& access, service::GenerationService& generation,
                         jobs::JobRunner& runner, models::ModelInstaller& installer, const std::string& device);

}  // namespace easel::server
