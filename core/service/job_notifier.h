#pragma once
// What the platform tells the outside world about finished jobs and trainings' stages (Transmission's "mediator"
// interfaces): the platform decides whether a job's owner is told and which base its links use;
// an adapter (server/job_webhooks.h) turns that into a signed webhook delivery. Tests record calls.

#include <cstdint>
#include <string>

#include "service/generation_service.h"
#include "service/training_service.h"

namespace easel::service {

class JobNotifier {
public:
    virtual ~JobNotifier() = default;
    // A job with a webhook finished (success, failure or cancel) and its owner is still there.
    // `linkBase` is the address the client used to reach us, for the links in the payload.
    virtual void jobFinished(std::int64_t userId, const std::string& webhookUrl, const JobView& view,
                             const std::string& linkBase) = 0;
    // A training with a webhook entered a stage (view.stage: training_started ... model_ready, failed,
    // cancelled) and its owner is still there.
    virtual void trainingChanged(std::int64_t userId, const std::string& webhookUrl, const TrainingView& view) = 0;
    // The account is being deleted: drop anything still queued for it.
    virtual void forgetAccount(std::int64_t userId) = 0;
};

}  // namespace easel::service
