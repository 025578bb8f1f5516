#pragma once
// /api/v1/auth/* and /api/v1/account/*: sign-up, login, logout, the dashboard's account calls.

#include "server/router.h"
#include "service/access_control.h"

namespace easel::server {

void registerAccountRoutes(Router& router, service::AccessControl& access);

}  // namespace easel::server
