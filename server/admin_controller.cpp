#include "admin_controller.h"

#include <nlohmann/json.hpp>

#include "authenticated.h"

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

void registerAdminRoutes(Router& router, service::AccessControl& access, service::GenerationService& g,
                         jobs::JobRunner& runner) {
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

    auto details =
        authenticated(access, Credential::AdminKey, [&g, &runner](const Request&, const json&, const service::Access&) {
            json models = json::array();
            for (const auto& m : g.models()) models.push_back(m.id);
            return Response::json(200, {{"status", "success"},
                                        {"loaded_models", models},
                                        {"queue_length", g.queueLength()},
                                        {"running_jobs", runner.runningCount()},
                                        {"seconds_per_image", runner.secondsPerImage()}});
        });
    router.add("POST", "/api/v1/enterprise/system_details", details,
               "Admin: queue length, running jobs, loaded models");
    router.add("GET", "/api/v1/enterprise/system_details", details, "Admin: queue length, running jobs, loaded models");
    router.add(
        "POST", "/api/v1/enterprise/get_all_models",
        authenticated(
            access, Credential::AdminKey,
            [&g](const Request&, const json&, const service::Access&) {
                json models = json::array();
                for (const auto& m : g.models()) {
                    models.push_back({{"model_id", m.id}, {"model_name", m.name}, {"description", m.description}});
                }
                return Response::json(200, {{"status", "success"}, {"models", models}});
            }),
        "Admin: models on this server");
}

}  // namespace easel::server
