// Accounts, sessions, API keys, plans, rate limits and purges, through real HTTP.

#include <fstream>
#include <sstream>

#include "app/admin_command.h"
#include "backend_fixture.h"
#include "storage/database.h"

namespace easel::testing {
namespace {

using nlohmann::json;

std::int64_t countRows(const std::filesystem::path& db, const std::string& table, std::int64_t userId) {
    storage::Database d(db);
    const auto l = d.lock();
    auto s = d.statement("SELECT COUNT(*) FROM " + table + " WHERE user_id = ?");
    s.bindAll(userId);
    s.step();
    return s.int64(0);
}

TEST_F(BackendTest, SignupGivesAKeyThatAuthenticates) {
    const auto a = signup("Ada@Example.com");
    EXPECT_EQ(a["email"], "ada@example.com");
    EXPECT_EQ(a["plan"], "free");
    const std::string key = a["api_key"];
    EXPECT_EQ(key.size(), 43u);
    const auto r = text2img(key);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["status"], "success");
    // The same key works as a Bearer token and as X-API-Key.
    EXPECT_EQ(get("/api/v1/models", {{"Authorization", "Bearer " + key}}).status, 200);
    EXPECT_EQ(get("/api/v1/models", {{"X-API-Key", key}}).status, 200);
}

TEST_F(BackendTest, BadInputToSignupGetsFieldErrors) {
    auto r = post("/api/v1/auth/signup", {{"email", "not-an-email"}, {"password", "short"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.json()["status"], "error");
    EXPECT_TRUE(r.json()["errors"].contains("email"));
    EXPECT_TRUE(r.json()["errors"].contains("password"));
    EXPECT_EQ(r.json()["messege"], r.json()["message"]);
    EXPECT_EQ(httpRequest(port, "POST", "/api/v1/auth/signup", "{not json").status, 400);
    EXPECT_EQ(httpRequest(port, "POST", "/api/v1/auth/signup", "[1,2]").status, 400);
    signup("b@example.com");
    EXPECT_EQ(post("/api/v1/auth/signup", {{"email", "B@example.com"}, {"password", "another one"}}).status, 409);
}

TEST_F(BackendTest, WrongOldOrAbsentKeysAreRejected) {
    const std::string key = signup("a@example.com")["api_key"];
    EXPECT_EQ(text2img("").status, 401);
    EXPECT_EQ(text2img("nonsense").status, 401);
    EXPECT_EQ(text2img(key + "x").status, 401);
    EXPECT_EQ(post("/api/v6/images/text2img", {{"prompt", "x"}}).status, 401);

    const auto token = login("a@example.com");
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token}};
    // A session token alone (stolen from a browser, say) cannot mint a working key: the password is needed.
    EXPECT_EQ(post("/api/v1/account/api-key/regenerate", json::object(), auth).status, 400);
    EXPECT_EQ(post("/api/v1/account/api-key/regenerate", {{"password", "wrong password"}}, auth).status, 401);
    EXPECT_EQ(text2img(key).status, 200);  // refused attempts changed nothing
    const auto r = post("/api/v1/account/api-key/regenerate", {{"password", "correct horse"}}, auth);
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string fresh = r.json()["api_key"];
    EXPECT_NE(fresh, key);
    EXPECT_EQ(text2img(key).status, 401);  // the old key is dead at once
    EXPECT_EQ(text2img(fresh).status, 200);
}

TEST_F(BackendTest, ViewingTheKeyNeedsThePassword) {
    const std::string key = signup("a@example.com")["api_key"];
    const auto token = login("a@example.com");
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token}};
    EXPECT_EQ(post("/api/v1/account/api-key/view", {{"password", "wrong password"}}, auth).status, 401);
    const auto r = post("/api/v1/account/api-key/view", {{"password", "correct horse"}}, auth);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.json()["api_key"], key);
    // The database holds no usable key: neither the key nor its base64 appears in the file.
    std::string bytes;
    if (config.database.empty()) {
        std::ifstream in(databaseLocation(), std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    } else {
        storage::Database db(databaseLocation());
        const auto l = db.lock();
        auto s = db.statement("SELECT u::text FROM users u");  // every column of every row, as text
        while (s.step()) bytes += s.text(0);
    }
    EXPECT_EQ(bytes.find(key), std::string::npos);
    // The server key file is private.
    const auto perms = std::filesystem::status(config.dataDir / "server.key").permissions();
    EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
              std::filesystem::perms::none);
}

TEST_F(BackendTest, SessionsLoginLogoutAndPasswordChange) {
    signup("a@example.com");
    EXPECT_EQ(post("/api/v1/auth/login", {{"email", "a@example.com"}, {"password", "wrong one!"}}).status, 401);
    EXPECT_EQ(post("/api/v1/auth/login", {{"email", "nobody@example.com"}, {"password", "wrong one!"}}).status, 401);
    const auto t1 = login("a@example.com");
    const auto t2 = login("a@example.com");
    auto account = get("/api/v1/account", {{"Authorization", "Bearer " + t1}});
    ASSERT_EQ(account.status, 200) << account.body;
    EXPECT_EQ(account.json()["email"], "a@example.com");
    EXPECT_EQ(account.json()["quota"]["limit"], 20);
    EXPECT_EQ(account.json()["quota"]["left"], 20);
    EXPECT_EQ(get("/api/v1/account").status, 401);

    // Wrong old password: refused, nothing changes.
    EXPECT_EQ(post("/api/v1/account/password", {{"old_password", "nope nope"}, {"new_password", "battery staple"}},
                   {{"Authorization", "Bearer " + t1}})
                  .status,
              401);
    const auto r =
        post("/api/v1/account/password", {{"old_password", "correct horse"}, {"new_password", "battery staple"}},
             {{"Authorization", "Bearer " + t1}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(get("/api/v1/account", {{"Authorization", "Bearer " + t1}}).status, 200);  // this session stays
    EXPECT_EQ(get("/api/v1/account", {{"Authorization", "Bearer " + t2}}).status, 401);  // others end
    nextMinute();
    EXPECT_EQ(post("/api/v1/auth/login", {{"email", "a@example.com"}, {"password", "correct horse"}}).status, 401);
    login("a@example.com", "battery staple");

    EXPECT_EQ(post("/api/v1/auth/logout", json::object(), {{"Authorization", "Bearer " + t1}}).status, 200);
    EXPECT_EQ(get("/api/v1/account", {{"Authorization", "Bearer " + t1}}).status, 401);
}

TEST_F(BackendTest, AChangedPasswordCanReplaceTheKeyInTheSameStep) {
    const std::string key = signup("a@example.com")["api_key"];
    const auto token = login("a@example.com");
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token}};
    const auto r = post(
        "/api/v1/account/password",
        {{"old_password", "correct horse"}, {"new_password", "battery staple"}, {"regenerate_api_key", true}}, auth);
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string fresh = r.json().value("api_key", "");
    ASSERT_FALSE(fresh.empty()) << r.body;
    EXPECT_NE(fresh, key);
    EXPECT_EQ(text2img(key).status, 401);  // the leaked key is dead with the leaked password
    EXPECT_EQ(text2img(fresh).status, 200);
    const auto shown = post("/api/v1/account/api-key/view", {{"password", "battery staple"}}, auth);
    EXPECT_EQ(shown.json().value("api_key", ""), fresh);
    // Without the flag the key stays.
    const auto again =
        post("/api/v1/account/password", {{"old_password", "battery staple"}, {"new_password", "correct horse"}}, auth);
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_FALSE(again.json().contains("api_key"));
    EXPECT_EQ(text2img(fresh).status, 200);
}

TEST_F(BackendTest, MaintenanceDeletesExpiredSessions) {
    backend->accounts().createUser("a@example.com", "correct horse", "premium");  // never deleted for idling
    const auto token = login("a@example.com");
    auto sessions = [&] {
        storage::Database db(databaseLocation());
        auto s = db.statement("SELECT COUNT(*) FROM sessions");
        return s.step() ? s.int64(0) : -1;
    };
    EXPECT_EQ(sessions(), 1);
    backend->sweep();
    EXPECT_EQ(sessions(), 1);          // still valid
    clock.advance(400LL * 24 * 3600);  // far past any session's lifetime
    EXPECT_EQ(get("/api/v1/account", {{"Authorization", "Bearer " + token}}).status, 401);
    backend->sweep();
    EXPECT_EQ(sessions(), 0);
}

TEST_F(BackendTest, LoginIsThrottled) {
    signup("a@example.com");
    int limited = 0;
    for (int i = 0; i < 12; ++i) {
        const auto r =
            post("/api/v1/auth/login", {{"email", "a@example.com"}, {"password", "guess " + std::to_string(i)}});
        if (r.status == 429) {
            ++limited;
            EXPECT_FALSE(r.header("retry-after").empty());
        }
    }
    EXPECT_EQ(limited, 2);  // 10 attempts per minute
    nextMinute();
    login("a@example.com");
}

TEST_F(BackendTest, BehindATrustedProxyLimitsCountTheForwardedClientAndIPv6By64) {
    stop();
    httpOptions.trustedProxies = server::parseCidrList("127.0.0.1");
    start();
    const auto attempt = [&](const std::string& forwardedFor, int i) {
        return post("/api/v1/auth/login", {{"email", "a@example.com"}, {"password", "guess " + std::to_string(i)}},
                    {{"X-Forwarded-For", forwardedFor}})
            .status;
    };
    signup("a@example.com");
    // Ten hosts of one /64 are one client: together they get the 10 attempts of one address.
    for (int i = 0; i < 10; ++i) EXPECT_EQ(attempt("2001:db8:1:2::" + std::to_string(i + 1), i), 401) << i;
    EXPECT_EQ(attempt("2001:db8:1:2:ffff::1", 10), 429);
    // The neighbouring /64 and an IPv4 client behind the same proxy are others.
    EXPECT_EQ(attempt("2001:db8:1:3::1", 11), 401);
    EXPECT_EQ(attempt("198.51.100.7", 12), 401);
}

TEST_F(BackendTest, AStrangersWrongGuessesDoNotLockTheOwnerOut) {
    signup("a@example.com");
    auto& accounts = backend->accounts();
    auto code = [&](const std::string& password, const std::string& ip) {
        try {
            accounts.login("a@example.com", password, ip);
            return 200;
        } catch (const ServiceError& e) {
            return e.code() == ErrorCode::TooManyRequests ? 429 : e.code() == ErrorCode::Unauthorized ? 401 : 500;
        }
    };
    for (int i = 0; i < 10; ++i) EXPECT_EQ(code("guess " + std::to_string(i), "198.51.100.7"), 401);
    EXPECT_EQ(code("guess 10", "198.51.100.7"), 429);      // that address is done for this minute
    EXPECT_EQ(code("correct horse", "203.0.113.9"), 200);  // the owner, elsewhere, is not
    EXPECT_EQ(code("correct horse", "203.0.113.9"), 200);  // and successes do not count
    // Guessing spread over many addresses meets the per-account bound: 10 addresses x 10 failures.
    for (int a = 1; a < 10; ++a) {
        for (int i = 0; i < 10; ++i) EXPECT_EQ(code("guess", "198.51.100." + std::to_string(10 + a)), 401);
    }
    EXPECT_EQ(code("guess", "198.51.100.99"), 429);
    nextMinute();
    EXPECT_EQ(code("correct horse", "203.0.113.9"), 200);
}

TEST_F(BackendTest, RateLimitHeadersAnd429) {
    const std::string key = signup("a@example.com")["api_key"];
    auto r = text2img(key, {{"samples", 1}});
    EXPECT_EQ(r.header("x-ratelimit-limit"), "10");  // the free plan's generation requests per minute
    EXPECT_EQ(r.header("x-ratelimit-remaining"), "9");
    EXPECT_FALSE(r.header("x-ratelimit-reset").empty());
    for (int i = 0; i < 9; ++i) text2img(key, {{"prompt", ""}});  // refused as invalid, but counted
    r = text2img(key);
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.header("x-ratelimit-remaining"), "0");
    EXPECT_FALSE(r.header("retry-after").empty());
    EXPECT_TRUE(r.json().contains("retry_after"));
    // Polls and reads have their own, wider bucket: a client waiting for its images is never locked out.
    const auto poll = post("/api/v6/images/fetch", {{"key", key}, {"request_id", 1}});
    EXPECT_EQ(poll.status, 200);
    EXPECT_EQ(poll.header("x-ratelimit-limit"), "300");
    for (int i = 0; i < 299; ++i) get("/api/v1/models", {{"X-API-Key", key}});
    EXPECT_EQ(get("/api/v1/models", {{"X-API-Key", key}}).status, 429);
    nextMinute();
    EXPECT_EQ(text2img(key).status, 200);
}

TEST_F(BackendTest, FreeQuotaIsTwentyImagesThen402) {
    const std::string key = signup("a@example.com")["api_key"];
    int images = 0;
    for (int i = 0; i < 6; ++i) {
        nextMinute();
        const auto r = text2img(key, {{"samples", 4}});
        if (r.status != 200) {
            EXPECT_EQ(r.status, 402) << r.body;
            EXPECT_NE(r.json()["message"].get<std::string>().find("20"), std::string::npos);
            break;
        }
        images += static_cast<int>(r.json()["output"].size());
    }
    EXPECT_EQ(images, 20);
    // A request that would cross the line is refused whole; the account shows 20 of 20.
    const auto token = login("a@example.com");
    const auto account = get("/api/v1/account", {{"Authorization", "Bearer " + token}}).json();
    EXPECT_EQ(account["quota"]["used"], 20);
    EXPECT_EQ(account["quota"]["left"], 0);
    // Usage history lists the five requests.
    const auto usage = get("/api/v1/account/usage", {{"Authorization", "Bearer " + token}}).json();
    EXPECT_EQ(usage["total"], 5);
    EXPECT_EQ(usage["usage"][0]["images"], 4);
    EXPECT_EQ(usage["usage"][0]["kind"], "text2img");
}

TEST_F(BackendTest, QuotaIsExactUnder64ConcurrentRequests) {
    // Premium-sized queue limits so that the quota, not the queue cap, is what stops requests.
    const std::string key = signup("a@example.com")["api_key"];
    generator.block();
    auto caller = backend->accounts().authenticateKey(key);
    accounts::Plan plan = *caller.plan;
    plan.maxQueued = 1000;
    caller.plan = &plan;
    std::atomic<int> accepted{0}, paymentRequired{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 64; ++i) {
        threads.emplace_back([&] {
            service::SubmitRequest r;
            r.params.prompt = "a circle";
            r.instant = true;
            try {
                backend->generation().submit(caller, r);
                ++accepted;
            } catch (const ServiceError& e) {
                if (e.code() == ErrorCode::PaymentRequired) ++paymentRequired;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(accepted.load(), 20);
    EXPECT_EQ(paymentRequired.load(), 44);
    EXPECT_EQ(backend->accounts().account(caller.userId).imagesUsed, 20);
}

TEST_F(BackendTest, IdempotentRetryIsNotChargedTwice) {
    const std::string key = signup("a@example.com")["api_key"];
    const auto first =
        post("/api/v6/images/text2img", {{"key", key}, {"prompt", "a star"}}, {{"Idempotency-Key", "abc-1"}});
    const auto again =
        post("/api/v6/images/text2img", {{"key", key}, {"prompt", "a star"}}, {{"Idempotency-Key", "abc-1"}});
    ASSERT_EQ(first.status, 200);
    ASSERT_EQ(again.status, 200);
    EXPECT_EQ(first.json()["id"], again.json()["id"]);
    EXPECT_EQ(first.json()["output"], again.json()["output"]);
    const auto other =
        post("/api/v6/images/text2img", {{"key", key}, {"prompt", "a star"}}, {{"Idempotency-Key", "abc-2"}});
    EXPECT_NE(other.json()["id"], first.json()["id"]);
    EXPECT_EQ(generator.completed(), 2);
    const auto caller = backend->accounts().authenticateKey(key);
    EXPECT_EQ(backend->accounts().account(caller.userId).imagesUsed, 2);
}

TEST_F(BackendTest, AnotherAccountsJobsAreNotFound) {
    const std::string keyA = signup("a@example.com")["api_key"];
    const std::string keyB = signup("b@example.com")["api_key"];
    const auto job = text2img(keyA).json();
    const auto id = job["id"].get<std::int64_t>();
    EXPECT_EQ(post("/api/v6/images/fetch", {{"key", keyB}, {"request_id", id}}).status, 404);
    EXPECT_EQ(post("/api/v6/images/fetch/" + std::to_string(id), {{"key", keyB}}).status, 404);
    EXPECT_EQ(post("/api/v6/images/cancel", {{"key", keyB}, {"request_id", id}}).status, 404);
    EXPECT_EQ(httpRequest(port, "DELETE", "/api/v1/history/" + std::to_string(id), "{}", {{"X-API-Key", keyB}}).status,
              404);
    EXPECT_EQ(get("/api/v1/history", {{"X-API-Key", keyB}}).json()["total"], 0);
    EXPECT_EQ(post("/api/v6/images/fetch", {{"key", keyA}, {"request_id", id}}).status, 200);
    EXPECT_EQ(get("/api/v1/history", {{"X-API-Key", keyA}}).json()["total"], 1);
}

TEST_F(BackendTest, DeletingAnAccountLeavesNoRowAndNoFile) {
    const auto a = signup("a@example.com");
    const std::string key = a["api_key"];
    const auto userId = a["user_id"].get<std::int64_t>();
    const auto image = text2img(key).json()["output"][0].get<std::string>();
    const auto path = image.substr(image.find("/images/"));
    EXPECT_EQ(get(path).status, 200);
    ASSERT_GT(blobs().count(userId), 0u);
    const auto token = login("a@example.com");
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token}};
    EXPECT_EQ(httpRequest(port, "DELETE", "/api/v1/account", json{{"password", "bad password"}}.dump(), auth).status,
              401);
    const auto r = httpRequest(port, "DELETE", "/api/v1/account", json{{"password", "correct horse"}}.dump(), auth);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(blobs().count(userId), 0u);
    EXPECT_EQ(get(path).status, 404);
    EXPECT_EQ(text2img(key).status, 401);
    EXPECT_EQ(get("/api/v1/account", auth).status, 401);
    for (const auto* table : {"sessions", "usage", "jobs", "images", "uploads"}) {
        EXPECT_EQ(countRows(databaseLocation(), table, userId), 0) << table;
    }
    storage::Database db(databaseLocation());
    const auto l = db.lock();
    auto s = db.statement("SELECT COUNT(*) FROM users");
    s.step();
    EXPECT_EQ(s.int64(0), 0);
}

TEST_F(BackendTest, InterruptedPurgeIsFinishedAtStart) {
    const auto a = signup("a@example.com");
    const auto userId = a["user_id"].get<std::int64_t>();
    text2img(a["api_key"]);
    stop();
    {
        storage::Database db(databaseLocation());
        db.exec("UPDATE users SET deleting = 1");  // a crash right after the purge began
    }
    start();
    EXPECT_EQ(countRows(databaseLocation(), "jobs", userId), 0);
    EXPECT_EQ(blobs().count(userId), 0u);
}

TEST_F(BackendTest, InactiveFreeAccountsAreDeletedSubscribersKept) {
    const auto freeUser = signup("free@example.com");
    const auto paid = signup("paid@example.com");
    backend->accounts().setPlan("paid@example.com", "premium");
    clock.advance(300LL * 24 * 3600);
    backend->sweep();
    EXPECT_EQ(text2img(freeUser["api_key"]).status, 200);  // 300 days: kept, and now active again
    clock.advance(366LL * 24 * 3600);
    backend->sweep();
    EXPECT_EQ(text2img(freeUser["api_key"]).status, 401);
    EXPECT_EQ(text2img(paid["api_key"]).status, 200);
}

TEST_F(BackendTest, SignupCanBeClosed) {
    stop();
    config.accounts.openSignup = false;
    start();
    EXPECT_EQ(post("/api/v1/auth/signup", {{"email", "a@example.com"}, {"password", "correct horse"}}).status, 403);
    // An admin still creates accounts, through the API with an admin key.
    const auto admin = backend->accounts().createUser("root@example.com", "correct horse", "premium", true);
    const auto r =
        post("/api/v1/admin/users",
             {{"key", admin.apiKey}, {"email", "a@example.com"}, {"password", "correct horse"}, {"plan", "basic"}});
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.json()["plan"], "basic");
    // A normal key is not an admin key.
    EXPECT_EQ(get("/api/v1/admin/users", {{"X-API-Key", r.json()["api_key"].get<std::string>()}}).status, 403);
    EXPECT_EQ(get("/api/v1/admin/users", {{"X-API-Key", admin.apiKey}}).json()["users"].size(), 2u);
}

TEST(DatabaseOption, TakesAPostgresUrlFromTheOptionOrTheEnvironmentAndNothingElse) {
    auto parse = [](std::vector<std::string> args) {
        std::vector<char*> argv{const_cast<char*>("easel-server")};
        for (auto& a : args) argv.push_back(a.data());
        return app::databaseOption(app::ArgList(static_cast<int>(argv.size()), argv.data()));
    };
    ::unsetenv("EASEL_DATABASE_URL");
    EXPECT_EQ(parse({}), "");  // SQLite in the data dir
    EXPECT_EQ(parse({"--database", "postgresql://easel@db/easel"}), "postgresql://easel@db/easel");
    try {
        parse({"--database", "mysql://root:hunter2@db/easel"});
        ADD_FAILURE() << "a MySQL URL was taken";
    } catch (const app::UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("postgresql://"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    }
    ::setenv("EASEL_DATABASE_URL", "postgres://from-env/easel", 1);
    EXPECT_EQ(parse({}), "postgres://from-env/easel");
    EXPECT_EQ(parse({"--database", "postgresql://option/wins"}), "postgresql://option/wins");
    ::unsetenv("EASEL_DATABASE_URL");
}

TEST_F(BackendTest, AdminCommandsWorkWhileTheServerRuns) {
    auto run = [&](const std::string& verb, std::vector<std::string> args) {
        args.push_back("--data-dir");
        args.push_back(config.dataDir.string());
        if (!config.database.empty()) {
            args.push_back("--database");
            args.push_back(config.database);
        }
        std::vector<char*> argv{const_cast<char*>("admin")};
        for (auto& a : args) argv.push_back(a.data());
        std::ostringstream out;
        auto* old = std::cout.rdbuf(out.rdbuf());
        const int rc = app::runAdmin(verb, app::ArgList(static_cast<int>(argv.size()), argv.data()));
        std::cout.rdbuf(old);
        EXPECT_EQ(rc, 0);
        return json::parse(out.str());
    };
    const auto created =
        run("create-user", {"--email", "cli@example.com", "--password", "correct horse", "--plan", "free"});
    ASSERT_TRUE(created.contains("api_key"));
    ASSERT_TRUE(created.contains("user_id"));
    const std::string key = created["api_key"];
    EXPECT_EQ(text2img(key).status, 200);  // the running server sees the new account
    run("set-plan", {"--email", "cli@example.com", "--plan", "premium"});
    const auto r = text2img(key);
    EXPECT_EQ(r.header("x-ratelimit-limit"), "300");  // premium from the next request on
    const auto users = run("list-users", {});
    ASSERT_EQ(users.size(), 1u);
    EXPECT_EQ(users[0]["plan"], "premium");
    EXPECT_EQ(users[0]["images_used"], 2);

    // Without --password the password comes from standard input (or a file), out of `ps` and shell history.
    std::istringstream typed("from stdin pass\n");
    auto* oldIn = std::cin.rdbuf(typed.rdbuf());
    run("create-user", {"--email", "stdin@example.com"});
    std::cin.rdbuf(oldIn);
    login("stdin@example.com", "from stdin pass");
    const auto file = dir.path() / "password.txt";
    std::ofstream(file) << "from a file pass\n";
    run("create-user", {"--email", "file@example.com", "--password-file", file.string()});
    login("file@example.com", "from a file pass");
}

}  // namespace
}  // namespace easel::testing
