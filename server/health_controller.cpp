#include "server/health_controller.h"

#include <nlohmann/json.hpp>

namespace easel::server {

void registerHealthRoutes(Router& router, HealthInfo info) {
    router.addInline(
        "GET", "/health",
        [info](const Request&) {
            nlohmann::json body{{"status", "ok"}, {"version", info.version}, {"device", info.device}};
            body["model"] = info.model.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.model);
            return Response::json(200, body);
        },
        "Readiness probe");
}

}  // namespace easel::server
