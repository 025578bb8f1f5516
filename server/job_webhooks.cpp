#include "server/job_webhooks.h"

#include "server/generation_codec.h"
#include "server/training_codec.h"

namespace easel::server {

void JobWebhooks::jobFinished(std::int64_t userId, const std::string& webhookUrl, const service::JobView& view,
                              const std::string& linkBase) {
    auto body = jobJson(view, linkBase, m_generation, false);
    body["webhook_type"] = "generation";
    m_sender.enqueue(userId, webhookUrl, body.dump());
}

void JobWebhooks::trainingChanged(std::int64_t userId, const std::string& webhookUrl,
                                  const service::TrainingView& view) {
    auto body = trainingJson(view, false);  // the loss curve is a status query away
    body["webhook_type"] = "training";
    m_sender.enqueue(userId, webhookUrl, body.dump());
}

}  // namespace easel::server
