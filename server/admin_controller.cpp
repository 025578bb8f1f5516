#include "server/admin_controller.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "server/authenticated.h"
#include "server/model_controller.h"

namespace easel::server {

using nlohmann::json;

namespace {
json userJson(const storage::UserRow& u) {
    return {{"user_id", u.id},
            {"email", u.email},
            {"plan", u.plan},
            {"is_admin", u.isAdmin},
            {"images_used", u.imagesUsed},
            {"created_at", isoTime(u.createdAt)},
            {"last_active_at", isoTime(u.lastActiveAt)}};
}

}  // namespace

// This process's resident memory, from /proc (Linux).
double residentMegabytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    }
    return 0;
}

void registerAdminRoutes(Router& router, service::AccessControl& access, service::GenerationService& g,
                         jobs::JobRunner& runner, models::ModelInstaller& installer, const std::string& device) {
    auto& accounts = access.accounts();
    router.add("GET", "/api/v1/admin/users",
               authenticated(access, Credential::AdminKey,
                             [&accounts](const Request&, const json&, const service::Access&) {
                                 json users = json::array();
                                 for (const auto& u : accounts.listUsers()) users.push_back(userJson(u));
                                 return Response::json(200, {{"status", "success"}, {"users", users}});
                             }),
               "Admin: every account");
    router.add("POST", "/api/v1/admin/users",
               authenticated(access, Credential::AdminKey,
                             [&accounts](const Request&, const json& body, const service::Access&) {
                                 FieldReader r{body, {}};
                                 const auto plan = r.string("plan", 50).value_or("free");
                                 const auto admin = r.boolean("admin").value_or(false);
                                 r.check();
                                 const auto a = accounts.createUser(requireString(body, "email", 254),
                                                                    requireString(body, "password", 1024), plan, admin);
                                 return Response::json(201, {{"status", "success"},
                                                             {"user_id", a.userId},
                                                             {"email", a.email},
                                                             {"plan", a.plan},
                                                             {"api_key", a.apiKey}});
                             }),
               "Admin: create an account on any plan (works with closed sign-up)");
    router.add("POST", "/api/v1/admin/set-plan",
               authenticated(access, Credential::AdminKey,
                             [&accounts](const Request&, const json& body, const service::Access&) {
                                 accounts.setPlan(requireString(body, "email", 254), requireString(body, "plan", 50));
                                 return Response::json(200, {{"status", "success"}});
                             }),
               "Admin: move an account to another plan (applies from its next request)");

    auto details = authenticated(access, Credential::AdminKey,
                                 [&g, &runner, device](const Request&, const json&, const service::Access&) {
                                     json models = json::array();
                                     for (const auto& m : g.models()) models.push_back(m.id);
                                     return Response::json(200, {{"status", "success"},
                                                                 {"loaded_models", models},
                                                                 {"device", device},
                                                                 {"memory_rss_mb", residentMegabytes()},
                                                                 {"queue_length", g.queueLength()},
                                                                 {"running_jobs", runner.runningCount()},
                                                                 {"seconds_per_image", runner.secondsPerImage()}});
                                 });
    router.add("POST", "/api/v1/enterprise/system_details", details,
               "Admin: queue length, running jobs, loaded models");
    router.add("GET", "/api/v1/enterprise/system_details", details, "Admin: queue length, running jobs, loaded models");
    router.add("POST", "/api/v1/enterprise/get_all_models",
               authenticated(access, Credential::AdminKey,
                             [&g](const Request&, const json&, const service::Access&) {
                                 json models = json::array();
                                 for (const auto& m : g.models()) {
                                     models.push_back({{"model_id", m.id},
                                                       {"model_name", m.name},
                                                       {"description", m.description},
                                                       {"model_category", m.category}});
                                 }
                                 return Response::json(200, {{"status", "success"}, {"models", models}});
                             }),
               "Admin: models on this server");

    router.add(
        "POST", "/api/v1/enterprise/load_model",
        authenticated(access, Credential::AdminKey,
                      [&installer](const Request&, const json& body, const service::Access&) {
                          const auto s = parseModelSource(body, "stable_diffusion");
                          const auto started = installer.start(s);
                          return Response::json(200, installJson(started.modelId, started));
                      }),
        "Admin: load a model, LoRA or embedding (model_category) from a local path, an http(s) .safetensors URL or "
        "a Hugging Face repo id");
    router.add(
        "POST", "/api/v1/enterprise/verify_model",
        authenticated(access, Credential::AdminKey,
                      [&installer, &g](const Request&, const json& body, const service::Access&) {
                          const auto id = requireString(body, "model_id", 200);
                          if (const auto s = installer.status(id)) return Response::json(200, installJson(id, *s));
                          for (const auto& m : g.models()) {
                              if (m.id == id) {
                                  return Response::json(200, installJson(id, {id, "ready", 0, 0, 0, m.description}));
                              }
                          }
                          throw ServiceError(ErrorCode::NotFound, "no model '" + id + "' on this server");
                      }),
        "Admin: state of a model (downloading with progress, loading, ready, failed)");
    router.add(
        "POST", "/api/v1/enterprise/delete_model",
        authenticated(access, Credential::AdminKey,
                      [&installer](const Request&, const json& body, const service::Access&) {
                          const auto id = requireString(body, "model_id", 200);
                          if (!installer.remove(id)) {
                              throw ServiceError(ErrorCode::NotFound, "no model '" + id + "' to delete");
                          }
                          return Response::json(200, {{"status", "success"}, {"message", "model " + id + " deleted"}});
                      }),
        "Admin: unload a model and delete its files");
    router.add("POST", "/api/v1/enterprise/clear_queue",
               authenticated(access, Credential::AdminKey,
                             [&runner](const Request&, const json&, const service::Access&) {
                                 const int n = runner.cancelAllQueued();
                                 return Response::json(
                                     200, {{"status", "success"},
                                           {"cancelled", n},
                                           {"message", std::to_string(n) + " queued requests cancelled and refunded"}});
                             }),
               "Admin: cancel every queued request (refunded)");
}

}  // namespace easel::server
