#pragma once
// The platform's JobNotifier over HTTP: a finished job's fetch-shaped JSON (webhook_type
// "generation"), or a training's fine_tune_status JSON at each stage (webhook_type "training", with
// training_status), handed to the WebhookSender, which signs and delivers it.

#include "server/webhook_sender.h"
#include "service/generation_service.h"
#include "service/job_notifier.h"

namespace easel::server {

class JobWebhooks final : public service::JobNotifier {
public:
    JobWebhooks(WebhookSender& sender, const service::GenerationService& generation)
        : m_sender(sender), m_generation(generation) {}

    void jobFinished(std::int64_t userId, const std::string& webhookUrl, const service::JobView& view,
                     const std::string& linkBase) override;
    void trainingChanged(std::int64_t userId, const std::string& webhookUrl,
                         const service::TrainingView& view) override;
    void forgetAccount(std::int64_t userId) override { m_sender.forget(userId); }

private:
    WebhookSender& m_sender;
    const service::GenerationService& m_generation;
};

}  // namespace easel::server
