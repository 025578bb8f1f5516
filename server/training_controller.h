#pragma once
// The hosted Stable Diffusion API's fine-tuning endpoints: fine_tune (DreamBooth), lora_fine_tune,
// fine_tune_status, cancel_training (and its documented misspelling cancle_training), finetune/delete
// and finetune_list. The key goes in the JSON body as on the other v3 routes; ids go in the path.

#include "server/generation_controller.h"
#include "server/router.h"
#include "service/access_control.h"
#include "service/generation_service.h"
#include "service/training_service.h"

namespace easel::server {

// `options`: the same image-link policy as init_image (GenerationRoutesOptions).
void registerTrainingRoutes(Router& router, service::AccessControl& access, service::TrainingService& training,
                            service::GenerationService& generation, GenerationRoutesOptions options = {});

}  // namespace easel::server
