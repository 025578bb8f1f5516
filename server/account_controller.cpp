#include "server/account_controller.h"

#include <nlohmann/json.hpp>

#include "server/authenticated.h"
#include "server/client_address.h"

namespace easel::server {
namespace {

using nlohmann::json;

json limitsJson(const accounts::Plan& p) {
    return {{"requests_per_minute", p.requestsPerMinute},
            {"max_queued", p.maxQueued},
            {"max_concurrent", p.maxConcurrent},
            {"max_steps", p.maxSteps},
            {"priority", p.priority},
            {"training_quota", p.trainingQuota ? nlohmann::json(*p.trainingQuota) : nlohmann::json(nullptr)}};
}

json accountJson(const accounts::AccountView& a) {
    json quota{{"used", a.imagesUsed}};
    if (a.plan->imageQuota) {
        quota["limit"] = *a.plan->imageQuota;
        quota["left"] = std::max<std::int64_t>(0, *a.plan->imageQuota - a.imagesUsed);
    } else {
        quota["limit"] = nullptr;
        quota["left"] = nullptr;
    }
    return {{"status", "success"},   {"user_id", a.userId},
            {"email", a.email},      {"plan", a.plan->name},
            {"quota", quota},        {"limits", limitsJson(*a.plan)},
            {"is_admin", a.isAdmin}, {"created_at", isoTime(a.createdAt)}};
}

}  // namespace

void registerAccountRoutes(Router& router, service::AccessControl& access) {
    auto& accounts = access.accounts();

    router.add(
        "POST", "/api/v1/auth/signup",
        [&accounts](const Request& req) {
            const auto body = jsonBody(req);
            const auto a = accounts.signup(requireString(body, "email", 254), requireString(body, "password", 1024),
                                           addressGroup(req.remoteAddress));
            return Response::json(201, {{"status", "success"},
                                        {"user_id", a.userId},
                                        {"email", a.email},
                                        {"plan", a.plan},
                                        {"api_key", a.apiKey}});
        },
        "Create an account (free plan); returns its API key");

    router.add(
        "POST", "/api/v1/auth/login",
        [&accounts](const Request& req) {
            const auto body = jsonBody(req);
            const auto token = accounts.login(requireString(body, "email", 254), requireString(body, "password", 1024),
                                              addressGroup(req.remoteAddress));
            const auto who = accounts.authenticateToken(token);
            return Response::json(200, {{"status", "success"}, {"token", token}, {"user_id", who.userId}});
        },
        "Log in; returns a session token for the account endpoints");

    router.add(
        "POST", "/api/v1/auth/logout",
        [&accounts](const Request& req) {
            accounts.logout(bearerToken(req));
            return Response::json(200, {{"status", "success"}});
        },
        "End the session of the bearer token");

    router.add("GET", "/api/v1/account",
               authenticated(access, Credential::SessionToken,
                             [&accounts](const Request&, const json&, const service::Access& who) {
                                 auto body = accountJson(accounts.account(who.caller.userId));
                                 body["webhook_secret"] = accounts.webhookSecret(who.caller.userId);
                                 return Response::json(200, body);
                             }),
               "The account: e-mail, plan, quota used and left, limits");

    router.add("POST", "/api/v1/account/password",
               authenticated(access, Credential::SessionToken,
                             [&accounts](const Request& req, const json& body, const service::Access& who) {
                                 FieldReader fields{body, {}};
                                 const bool replaceKey = fields.boolean("regenerate_api_key").value_or(false);
                                 fields.check();
                                 const auto key = accounts.changePassword(
                                     who.caller.userId, bearerToken(req), requireString(body, "old_password", 1024),
                                     requireString(body, "new_password", 1024), replaceKey);
                                 json out{{"status", "success"}};
                                 setMessage(out, key ? "password changed; other sessions ended; the API key was "
                                                       "replaced and the old one no longer works"
                                                     : "password changed; other sessions ended");
                                 if (key) out["api_key"] = *key;
                                 return Response::json(200, out);
                             }),
               "Change the password (needs the old one); ends the account's other sessions, and with "
               "regenerate_api_key also replaces the API key");

    router.add("POST", "/api/v1/account/api-key/view",
               authenticated(access, Credential::SessionToken,
                             [&accounts](const Request&, const json& body, const service::Access& who) {
                                 const auto key =
                                     accounts.viewKey(who.caller.userId, requireString(body, "password", 1024));
                                 return Response::json(200, {{"status", "success"}, {"api_key", key}});
                             }),
               "Show the API key (needs the password)");

    router.add("POST", "/api/v1/account/api-key/regenerate",
               authenticated(access, Credential::SessionToken,
                             [&accounts](const Request&, const json& body, const service::Access& who) {
                                 const auto key =
                                     accounts.regenerateKey(who.caller.userId, requireString(body, "password", 1024));
                                 return Response::json(200, {{"status", "success"}, {"api_key", key}});
                             }),
               "Replace the API key (needs the password); the old one is rejected at once");

    router.add("GET", "/api/v1/account/usage",
               authenticated(access, Credential::SessionToken,
                             [&accounts](const Request& req, const json&, const service::Access& who) {
                                 const int limit = queryInt(req, "limit", 50, 1, 500);
                                 const int offset = queryInt(req, "offset", 0, 0, 1 << 30);
                                 json rows = json::array();
                                 for (const auto& u : accounts.usage(who.caller.userId, limit, offset)) {
                                     rows.push_back({{"request_id", u.requestId ? json(*u.requestId) : json(nullptr)},
                                                     {"kind", u.kind},
                                                     {"images", u.images},
                                                     {"created_at", isoTime(u.createdAt)}});
                                 }
                                 return Response::json(200, {{"status", "success"},
                                                             {"total", accounts.usageCount(who.caller.userId)},
                                                             {"usage", rows}});
                             }),
               "Usage history: what was generated when (newest first; limit, offset)");

    router.add("DELETE", "/api/v1/account",
               authenticated(access, Credential::SessionToken,
                             [&accounts](const Request&, const json& body, const service::Access& who) {
                                 accounts.deleteAccount(who.caller.userId, requireString(body, "password", 1024));
                                 return Response::json(
                                     200, {{"status", "success"},
                                           {"message", "the account and everything it owned are deleted"}});
                             }),
               "Delete the account and purge its keys, sessions, jobs, images and usage (needs the password)");
}

}  // namespace easel::server
