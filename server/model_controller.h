#pragma once
// Models, LoRAs and embeddings: the list an account sees (the shared ones and its own), and an account's
// own LoRAs and embeddings, loaded from a URL or the hub, checked and deleted. The admin's load_model
// (admin_controller) reads the same fields and answers in the same shape.

#include <nlohmann/json.hpp>
#include <string>

#include "models/model_installer.h"
#include "server/router.h"
#include "service/access_control.h"
#include "service/generation_service.h"

namespace easel::server {

// model_id, url (or model_url), hf_id (or huggingface_id), path, revision, model_category; a 400 naming
// each bad field. `defaultCategory` applies when model_category is absent.
models::ModelSource parseModelSource(const nlohmann::json& body, const std::string& defaultCategory);
// The answer of load_model / verify_model: status success | processing | error, with progress.
nlohmann::json installJson(const std::string& id, const models::InstallStatus& s);

void registerModelRoutes(Router& router, service::AccessControl& access, service::GenerationService& generation,
                         models::ModelInstaller& installer);

}  // namespace easel::server
