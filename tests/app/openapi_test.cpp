// server/openapi.json (kept in the repo) describes exactly the routes the server serves.

#include <fstream>

#include "backend_fixture.h"
#include "server/openapi.h"

namespace easel::testing {
namespace {

TEST_F(BackendTest, OpenApiDocumentMatchesTheRouteTable) {
    const auto router = backend->makeRouter("test", "cpu");
    const auto fresh = server::openApiDocument(router, "test");
    std::ifstream in(std::filesystem::path(EASEL_SOURCE_DIR) / "server" / "openapi.json");
    ASSERT_TRUE(in) << "server/openapi.json is missing";
    const auto committed = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(committed.is_discarded()) << "server/openapi.json is not valid JSON";
    if (committed["paths"] != fresh["paths"]) {
        std::ofstream("openapi.generated.json") << fresh.dump(2) << '\n';
    }
    // Every route is documented, and nothing else is.
    std::set<std::string> routes, documented;
    for (const auto& r : router.routes()) {
        std::string m = r.method;
        for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        routes.insert(m + " " + r.pattern);
        EXPECT_FALSE(r.summary.empty()) << r.method << ' ' << r.pattern << " has no summary";
    }
    for (const auto& [path, ops] : committed["paths"].items()) {
        for (const auto& [method, op] : ops.items()) documented.insert(method + " " + path);
    }
    EXPECT_EQ(routes, documented);
    EXPECT_EQ(committed["paths"], fresh["paths"])
        << "server/openapi.json is out of date: run `easel-server openapi > server/openapi.json` (a fresh copy was "
           "written to openapi.generated.json in the test's working directory)";
    EXPECT_EQ(committed["openapi"], "3.0.3");
}

}  // namespace
}  // namespace easel::testing
