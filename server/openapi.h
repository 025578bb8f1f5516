#pragma once
// The OpenAPI 3 document of the REST API, built from the route table (paths, methods, summaries,
// body limits) plus the request schemas of the main endpoints. `easel-server openapi` prints it;
// server/openapi.json is that output, kept in the repo, and a test checks it against the routes.

#include <nlohmann/json.hpp>
#include <string>

#include "server/router.h"

namespace easel::server {

nlohmann::json openApiDocument(const Router& router, const std::string& version);

}  // namespace easel::server
