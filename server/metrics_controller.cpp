#include "server/metrics_controller.h"

#include <cstdio>

#include "server/authenticated.h"

namespace easel::server {
namespace {

// One metric family in the text exposition format: HELP and TYPE lines, then its samples.
class Exposition {
public:
    void family(const char* name, const char* type, const char* help) {
        m_text += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n';
    }
    void sample(const std::string& name, double value, const std::string& labels = {}) {
        char number[64];
        std::snprintf(number, sizeof number, "%.17g", value);
        m_text += name + (labels.empty() ? "" : "{" + labels + "}") + ' ' + number + '\n';
    }
    std::string text() && { return std::move(m_text); }

private:
    std::string m_text;
};

std::string label(const char* name, const std::string& value) { return std::string(name) + "=\"" + value + '"'; }

}  // namespace

void registerMetricsRoutes(Router& router, service::AccessControl& access, service::GenerationService& g,
                           jobs::JobRunner& runner) {
    router.add("GET", "/metrics",
               authenticated(access, Credential::AdminKey,
                             [&access, &g, &runner](const Request&, const nlohmann::json&, const service::Access&) {
                                 Exposition out;
                                 out.family("easel_jobs", "gauge", "Generation jobs kept in the database, by status.");
                                 auto byStatus = g.jobsByStatus();
                                 for (const char* s : {"queued", "running", "succeeded", "failed", "cancelled"}) {
                                     byStatus.try_emplace(s, 0);
                                 }
                                 for (const auto& [status, n] : byStatus) {
                                     out.sample("easel_jobs", static_cast<double>(n), label("status", status));
                                 }
                                 out.family("easel_queue_length", "gauge", "Jobs waiting for a worker.");
                                 out.sample("easel_queue_length", g.queueLength());
                                 out.family("easel_running_jobs", "gauge", "Jobs a worker is running now.");
                                 out.sample("easel_running_jobs", runner.runningCount());

                                 const auto stats = runner.stats();
                                 out.family("easel_images_generated_total", "counter",
                                            "Images generated and stored since the server started.");
                                 out.sample("easel_images_generated_total", static_cast<double>(stats.imagesGenerated));
                                 out.family("easel_jobs_ended_total", "counter",
                                            "Jobs that ended since the server started, by outcome.");
                                 for (const char* o : {"succeeded", "failed", "cancelled", "requeued", "lost"}) {
                                     const auto it = stats.jobsEnded.find(o);
                                     out.sample("easel_jobs_ended_total",
                                                it == stats.jobsEnded.end() ? 0.0 : static_cast<double>(it->second),
                                                label("outcome", o));
                                 }
                                 out.family("easel_denoising_step_seconds", "histogram",
                                            "Seconds between two progress reports of a job: one denoising step.");
                                 std::uint64_t cumulative = 0;
                                 for (std::size_t i = 0; i < stats.stepBuckets.size(); ++i) {
                                     cumulative += stats.stepBuckets[i];
                                     char bound[32];
                                     if (i < jobs::JobRunner::Stats::kStepBuckets.size()) {
                                         std::snprintf(bound, sizeof bound, "%g",
                                                       jobs::JobRunner::Stats::kStepBuckets[i]);
                                     } else {
                                         std::snprintf(bound, sizeof bound, "+Inf");
                                     }
                                     out.sample("easel_denoising_step_seconds_bucket", static_cast<double>(cumulative),
                                                label("le", bound));
                                 }
                                 out.sample("easel_denoising_step_seconds_sum", stats.stepSecondsSum);
                                 out.sample("easel_denoising_step_seconds_count", static_cast<double>(stats.steps));
                                 out.family("easel_seconds_per_image", "gauge",
                                            "Recent seconds per image (a moving average; the ETA's basis).");
                                 out.sample("easel_seconds_per_image", runner.secondsPerImage());

                                 out.family("easel_waiting_requests", "gauge",
                                            "HTTP requests held open for their job (brief: native sync wait; "
                                            "synchronous: A1111 / OpenAI).");
                                 out.sample("easel_waiting_requests", g.waiting(), label("kind", "brief"));
                                 out.sample("easel_waiting_requests", g.longWaits(), label("kind", "synchronous"));
                                 out.family("easel_rate_limited_requests_total", "counter",
                                            "Requests refused with 429 for the plan's rate, by bucket.");
                                 out.sample("easel_rate_limited_requests_total",
                                            static_cast<double>(access.refusals(service::RateClass::Generation)),
                                            label("bucket", "generation"));
                                 out.sample("easel_rate_limited_requests_total",
                                            static_cast<double>(access.refusals(service::RateClass::Read)),
                                            label("bucket", "read"));
                                 Response r;
                                 r.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8";
                                 r.body = std::move(out).text();
                                 return r;
                             }),
               "Prometheus metrics (an admin key as Bearer): queue, jobs, images, step times, refusals");
}

}  // namespace easel::server
