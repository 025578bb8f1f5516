#include "health_controller.h"

#include <nlohmann/json.hpp>

namespace easel::server {

void registerHealthRoutes(Router& router, HealthInfo info) {
    router.add(
        "GET", "/health",
        [info](const Request&) {
            return Response::json(200, {{"status", "ok"}, {"version", info.version}, {"device", info.device}});
        },
        "Readiness probe");
}

}  // namespace easel::server
