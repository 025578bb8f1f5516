#pragma once
#include <string>

#include "server/router.h"

namespace easel::server {

struct HealthInfo {
    std::string version;
    std::string device;  // e.g. "cpu (8 threads)"
    std::string model;   // the default model's name; empty when none is loaded
};

// GET /health: 200 with {"status":"ok",...} once the server accepts requests.
void registerHealthRoutes(Router& router, HealthInfo info);

}  // namespace easel::server
