#pragma once
// JSON <-> fine-tuning requests and training views, spelled as the hosted API's fine_tune,
// lora_fine_tune and fine_tune_status spell them ("messege" included).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "server/generation_codec.h"
#include "service/training_service.h"

namespace easel::server {

// A fine_tune / lora_fine_tune body, leniently (numbers as strings). images[] are http(s) links, data
// URLs or links from base64_to_url, read like init_image; a field-level 400 names each bad one.
service::TrainingSubmit parseTraining(const nlohmann::json& body, jobs::TrainingMethod method,
                                      const service::GenerationService& generation, std::int64_t callerId,
                                      const ImageFetcher& fetcher, const std::string& baseUrl);

// fine_tune_status: status "success", messege = the stage (a failure's reason in "message"), data =
// "Step n/N, loss x, ETA s", plus step, total_steps, last_loss, the loss curve as "loss": [[step, loss],
// ...] (when `withCurve`), eta_seconds, model_id and the request's echo.
nlohmann::json trainingJson(const service::TrainingView& view, bool withCurve = true);

// "Step 120/400, loss 0.1234, ETA 95 s" and the like for every stage.
std::string progressLine(const service::TrainingView& view);

}  // namespace easel::server
