// GET /metrics: Prometheus' text format with the numbers the server really has (an admin key only).

#include <sstream>

#include "backend_fixture.h"

namespace easel::testing {
namespace {

// "name{labels}" -> value, from the text exposition format; checks every line's shape on the way.
std::map<std::string, double> parseExposition(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
        const auto space = line.rfind(' ');
        EXPECT_NE(space, std::string::npos) << line;
        out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return out;
}

TEST_F(BackendTest, MetricsCountJobsImagesStepsAndRefusals) {
    const std::string admin =
        backend->accounts().createUser("root@example.com", "correct horse", "premium", true).apiKey;
    const std::string user = signup("a@example.com")["api_key"];
    EXPECT_EQ(get("/metrics").status, 401);
    EXPECT_EQ(get("/metrics", {{"Authorization", "Bearer " + user}}).status, 403);

    for (int i = 0; i < 10; ++i)
        ASSERT_EQ(text2img(user).json()["status"], "success") << i;  // the free plan's 10 a minute
    EXPECT_EQ(text2img(user).status, 429);

    const auto r = get("/metrics", {{"Authorization", "Bearer " + admin}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u) << r.header("content-type");
    const auto m = parseExposition(r.body);
    EXPECT_EQ(m.at("easel_jobs{status=\"succeeded\"}"), 10);
    EXPECT_EQ(m.at("easel_jobs{status=\"queued\"}"), 0);
    EXPECT_EQ(m.at("easel_queue_length"), 0);
    EXPECT_EQ(m.at("easel_images_generated_total"), 10);
    EXPECT_EQ(m.at("easel_jobs_ended_total{outcome=\"succeeded\"}"), 10);
    EXPECT_EQ(m.at("easel_jobs_ended_total{outcome=\"failed\"}"), 0);
    // The fake model reports 4 steps a job; every one lands in a bucket, and +Inf holds them all.
    EXPECT_EQ(m.at("easel_denoising_step_seconds_count"), 40);
    EXPECT_EQ(m.at("easel_denoising_step_seconds_bucket{le=\"+Inf\"}"), 40);
    EXPECT_LE(m.at("easel_denoising_step_seconds_bucket{le=\"0.05\"}"), 40);
    EXPECT_GE(m.at("easel_denoising_step_seconds_sum"), 0);
    EXPECT_EQ(m.at("easel_rate_limited_requests_total{bucket=\"generation\"}"), 1);
    EXPECT_EQ(m.at("easel_rate_limited_requests_total{bucket=\"read\"}"), 0);
    EXPECT_EQ(m.at("easel_waiting_requests{kind=\"synchronous\"}"), 0);
}

}  // namespace
}  // namespace easel::testing
