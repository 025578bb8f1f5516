#include "server/model_controller.h"

#include "server/api_support.h"
#include "server/authenticated.h"

namespace easel::server {

using nlohmann::json;

namespace {

json modelJson(const jobs::ModelDescription& m, bool isDefault, const accounts::Caller& caller) {
    json out{{"model_id", m.id},
             {"model_name", m.name},
             {"model_category", m.category},
             {"family", m.family.empty() ? json(nullptr) : json(m.family)},
             {"name", m.name},
             {"description", m.description},
             {"default", isDefault},
             {"inpainting", m.inpainting},
             {"default_width", m.defaultWidth},
             {"default_height", m.defaultHeight},
             {"default_steps", m.defaultSteps},
             {"default_guidance_scale", m.defaultGuidance},
             {"size_multiple", m.sizeMultiple},
             // "private": loaded by one account for itself; "own": by the caller (it may delete it).
             {"private", m.ownerId != 0},
             {"own", m.ownerId != 0 && m.ownerId == caller.userId}};
    if (m.fileBytes > 0) out["size_bytes"] = m.fileBytes;
    return out;
}

// The caller's own adapter `id`, or nullopt.
std::optional<jobs::ModelDescription> ownModel(const service::GenerationService& g, const accounts::Caller& caller,
                                               const std::string& id) {
    for (const auto& m : g.models(caller)) {
        if (m.id == id && m.ownerId == caller.userId) return m;
    }
    return std::nullopt;
}

}  // namespace

models::ModelSource parseModelSource(const json& body, const std::string& defaultCategory) {
    FieldReader r{body, {}};
    models::ModelSource s;
    s.modelId = r.string("model_id", 200).value_or("");
    s.url = r.string("url", 4000).value_or(r.string("model_url", 4000).value_or(""));
    s.hfRepo = r.string("hf_id", 200).value_or(r.string("huggingface_id", 200).value_or(""));
    s.path = r.string("path", 4000).value_or("");
    s.revision = r.string("revision", 100).value_or("main");
    s.category = r.string("model_category", 40).value_or(defaultCategory);
    r.check();
    if (s.url.empty() && s.hfRepo.empty() && s.path.empty() && models::isHubRepoId(s.modelId)) {
        s.hfRepo = s.modelId;  // the hosted API's "model_id": "owner/name"
        s.modelId.clear();
    }
    return s;
}

json installJson(const std::string& id, const models::InstallStatus& s) {
    const bool done = s.state == "ready";
    const bool failed = s.state == "failed";
    json out{{"status", done     ? "success"
                        : failed ? "error"
                                 : "processing"},
             {"model_id", id},
             {"model_status", s.state}};
    setMessage(out, s.message);
    if (!done && !failed) {
        out["eta"] = s.etaSeconds;
        out["progress"] = {{"bytes_done", s.bytesDone}, {"bytes_total", s.bytesTotal}};
    }
    return out;
}

void registerModelRoutes(Router& router, service::AccessControl& access, service::GenerationService& g,
                         models::ModelInstaller& installer) {
    auto list = authenticated(
        access, Credential::ApiKey, [&g](const Request& req, const json& body, const service::Access& who) {
            // ?category=lora (or "model_category" in a POST body) lists one kind only.
            std::string category = req.query.count("category") ? req.query.at("category") : std::string();
            if (const auto it = body.find("model_category"); it != body.end() && it->is_string()) category = *it;
            const auto all = g.models();  // the first is the default model
            const auto fallback = all.empty() ? std::string() : all.front().id;
            json out = json::array();
            for (const auto& m : g.models(who.caller)) {
                if (category.empty() || m.category == category)
                    out.push_back(modelJson(m, m.id == fallback, who.caller));
            }
            return Response::json(200, {{"status", "success"}, {"models", out}});
        });
    router.add("GET", "/api/v1/models", list,
               "Models, LoRAs and embeddings this account may use (model_category; the default model is marked)");
    router.add("POST", "/api/v4/dreambooth/model_list", list, "Models on this server (hosted API spelling)");

    // An account's own LoRAs and embeddings: a load spends the generation bucket, and the file counts
    // against the plan's storage (the download stops at what is left).
    router.add("POST", "/api/v1/models/load",
               authenticated(access, Credential::ApiKeyGeneration,
                             [&g, &installer](const Request&, const json& body, const service::Access& who) {
                                 auto source = parseModelSource(body, "lora");
                                 source.ownerId = who.caller.userId;
                                 source.maxBytes = g.storageLeft(who.caller);
                                 const auto started = installer.start(source);
                                 return Response::json(200, installJson(started.modelId, started));
                             }),
               "Load a LoRA or embedding of this account's own (model_category lora | embeddings) from an https "
               ".safetensors URL or a Hugging Face repo id; only this account sees and uses it");
    router.add(
        "POST", "/api/v1/models/verify",
        authenticated(access, Credential::ApiKey,
                      [&g, &installer](const Request&, const json& body, const service::Access& who) {
                          const auto id = requireString(body, "model_id", 200);
                          if (const auto s = installer.status(id); s && s->ownerId == who.caller.userId) {
                              return Response::json(200, installJson(id, *s));
                          }
                          for (const auto& m : g.models(who.caller)) {
                              if (m.id == id) {
                                  return Response::json(200, installJson(id, {id, "ready", 0, 0, 0, m.description}));
                              }
                          }
                          throw ServiceError(ErrorCode::NotFound, "no model '" + id + "' on this server");
                      }),
        "State of a model this account loaded (downloading with progress, loading, ready, failed)");
    router.add("POST", "/api/v1/models/delete",
               authenticated(
                   access, Credential::ApiKey,
                   [&g, &installer](const Request&, const json& body, const service::Access& who) {
                       const auto id = requireString(body, "model_id", 200);
                       const auto status = installer.status(id);
                       const bool ownInstall = status && status->ownerId == who.caller.userId;
                       if (!ownModel(g, who.caller, id) && !ownInstall) {
                           throw ServiceError(ErrorCode::NotFound, "no LoRA or embedding '" + id + "' of this account");
                       }
                       installer.remove(id);
                       return Response::json(200, {{"status", "success"}, {"message", "model " + id + " deleted"}});
                   }),
               "Delete a LoRA or embedding this account loaded (its file no longer counts against storage)");
}

}  // namespace easel::server
