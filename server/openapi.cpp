#include "server/openapi.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <vector>

#include "common/request_limits.h"
#include "common/sampler_names.h"

namespace easel::server {
namespace {

using nlohmann::json;

json stringProp(const std::string& description) { return {{"type", "string"}, {"description", description}}; }

// Every name the engine takes, from the one table (common/sampler_names.h).
std::string schedulerDescription() {
    std::vector<std::string_view> classes;
    std::string a1111;
    for (const auto& n : kSamplerNames) {
        if (std::find(classes.begin(), classes.end(), n.diffusersClass) == classes.end()) {
            classes.push_back(n.diffusersClass);
        }
        if (!n.a1111.empty()) a1111 += (a1111.empty() ? "" : ", ") + std::string(n.a1111);
    }
    std::string out = "diffusers class name (";
    for (std::size_t i = 0; i < classes.size(); ++i) out += (i ? ", " : "") + std::string(classes[i]);
    return out + ") with use_karras_sigmas, or A1111 name (" + a1111 + ")";
}
json numberProp(const std::string& description) {
    return {{"oneOf", json::array({{{"type", "number"}}, {{"type", "string"}}})}, {"description", description}};
}
// A number within one of the request limits (common/request_limits.h), bounds stated in the schema.
template <typename T>
json limitedProp(const limits::Range<T>& range, const std::string& description) {
    auto p = numberProp(range.describe() + (description.empty() ? "" : "; " + description));
    p["minimum"] = range.min;
    p["maximum"] = range.max;
    return p;
}

json generationSchema(const std::string& kind) {
    const auto side = "multiple of the model's size multiple (8 for SD), at most " +
                      std::to_string(limits::kDefaultMaxSide) + " unless the server allows more; default: the model's";
    json props{
        {"key", stringProp("API key (or Authorization: Bearer / X-API-Key)")},
        {"model_id", stringProp("model id; default: the server's default model")},
        {"prompt", stringProp("what to draw; A1111 weighting (word:1.3) works")},
        {"negative_prompt", stringProp("what to avoid")},
        {"width", numberProp(side)},
        {"height", numberProp(side)},
        {"samples", limitedProp(limits::kSamples, "images")},
        {"num_inference_steps", limitedProp(limits::kSteps, "sampling steps, clamped to the plan's cap")},
        {"guidance_scale", limitedProp(limits::kGuidance, "at most 1: no classifier-free guidance")},
        {"seed", numberProp(limits::kSeed.describe() + "; null or -1: random; image i uses seed + i")},
        {"scheduler", stringProp(schedulerDescription())},
        {"use_karras_sigmas", stringProp("\"yes\"/\"no\" or a boolean")},
        {"clip_skip", limitedProp(limits::kClipSkip, "1 = last layer")},
        {"original_width", limitedProp(limits::kSizeConditioning,
                                       "SDXL size conditioning: the original image's "
                                       "width; 0 = width (other models ignore the six)")},
        {"original_height", limitedProp(limits::kSizeConditioning, "SDXL: the original image's height; 0 = height")},
        {"crop_top", limitedProp(limits::kSizeConditioning, "SDXL: crop corner, pixels from the top; default 0")},
        {"crop_left", limitedProp(limits::kSizeConditioning, "SDXL: crop corner, pixels from the left; default 0")},
        {"target_width", limitedProp(limits::kSizeConditioning, "SDXL: the target width; 0 = width")},
        {"target_height", limitedProp(limits::kSizeConditioning, "SDXL: the target height; 0 = height")},
        {"lora_model", stringProp("LoRA ids (model_category \"lora\"), comma-separated; the prompt's "
                                  "<lora:id:0.7> tags work too")},
        {"lora_strength",
         stringProp("a number, or one per LoRA comma-separated, " + limits::kLoraStrength.describe() + "; default 1")},
        {"embeddings_model", stringProp("textual-inversion ids (model_category \"embeddings\"), comma-separated; "
                                        "each one's trigger word is its id")},
        {"base64", stringProp("\"yes\": output holds data URLs instead of links")},
        {"webhook", stringProp("URL notified when the request finishes")},
        {"track_id", stringProp("echoed back in responses and webhooks")},
        {"instant_response", stringProp("\"yes\": answer \"processing\" at once")},
        {"temp", stringProp("\"yes\": keep the images 24 hours instead of 30 days")},
    };
    json required = json::array({"prompt"});
    if (kind != "text2img") {
        props["init_image"] = stringProp("base64 / data URL image, or a link from /api/v6/base64_to_url");
        props["strength"] = limitedProp(limits::kStrength, "(v3: prompt_strength) how much to change the init image");
        required.push_back("init_image");
    }
    if (kind == "inpaint") {
        props["mask_image"] = stringProp("same size as init_image; white = repaint");
        required.push_back("mask_image");
    }
    return {{"type", "object"}, {"properties", props}, {"required", required}};
}

json trainingSchema(bool lora) {
    json props{
        {"key", stringProp("API key (or Authorization: Bearer / X-API-Key)")},
        {"instance_prompt", stringProp("what the images show, with a rare token: \"a photo of sks dog\"")},
        {"class_prompt", stringProp("the class, for prior preservation: \"a photo of a dog\"; {a|b} variants draw "
                                    "class images of each")},
        {"base_model_id", stringProp("a Stable Diffusion model this account may use; default: the server's default "
                                     "model")},
        {"images",
         {{"type", "array"},
          {"items", {{"type", "string"}}},
          {"minItems", limits::kTrainingImages.min},
          {"maxItems", limits::kTrainingImages.max},
          {"description", "image links (http/https), data URLs, or links from /api/v6/base64_to_url; each at most " +
                              std::to_string(limits::kMaxTrainingImageBytes >> 20) + " MB"}}},
        {"captions",
         {{"type", "array"},
          {"items", {{"type", "string"}}},
          {"description",
           "Easel extension: one caption per image (as kohya's .txt files), each naming the "
           "instance token; empty or absent: the instance prompt"}}},
        {"max_train_steps",
         limitedProp(limits::kTrainSteps,
                     "optimiser steps; default " + std::to_string(limits::kDefaultStepsPerImage) + " per image")},
        {"seed", numberProp(limits::kSeed.describe() + "; null or -1: random")},
        {"training_type", stringProp("men, women, female, couple or null (kept and echoed)")},
        {"webhook", stringProp("URL notified at each stage (training_status)")},
        {"track_id", stringProp("echoed back in responses and webhooks")},
    };
    if (lora) {
        props["negative_prompt"] = stringProp("what the class images avoid");
        props["base_model_type"] = stringProp("the base model's type (kept and echoed)");
        props["lora_type"] = stringProp("lora (lycoris is not supported yet)");
    }
    return {{"type", "object"},
            {"properties", props},
            {"required", json::array({"instance_prompt", "class_prompt", "images"})}};
}

std::map<std::string, json> requestSchemas() {
    std::map<std::string, json> s;
    const json credentials{{"type", "object"},
                           {"properties", {{"email", stringProp("e-mail")}, {"password", stringProp("8+ characters")}}},
                           {"required", json::array({"email", "password"})}};
    s["POST /api/v1/auth/signup"] = credentials;
    s["POST /api/v1/auth/login"] = credentials;
    s["POST /api/v1/account/password"] = {
        {"type", "object"},
        {"properties",
         {{"old_password", stringProp("current password")},
          {"new_password", stringProp("8+ characters")},
          {"regenerate_api_key",
           {{"type", "boolean"}, {"description", "also replace the API key (answered as api_key)"}}}}},
        {"required", json::array({"old_password", "new_password"})}};
    const json password{{"type", "object"},
                        {"properties", {{"password", stringProp("the account's password")}}},
                        {"required", json::array({"password"})}};
    s["POST /api/v1/account/api-key/view"] = password;
    s["POST /api/v1/account/api-key/regenerate"] = password;
    s["DELETE /api/v1/account"] = password;
    const json requestId{
        {"type", "object"},
        {"properties", {{"key", stringProp("API key")}, {"request_id", numberProp("the request's id")}}},
        {"required", json::array({"request_id"})}};
    s["POST /api/v6/images/fetch"] = requestId;
    s["POST /api/v6/images/cancel"] = requestId;
    for (const std::string kind : {"text2img", "img2img", "inpaint"}) {
        s["POST /api/v6/images/" + kind] = generationSchema(kind);
        s["POST /api/v3/" + kind] = generationSchema(kind);
        s["POST /api/v6/realtime/" + kind] = generationSchema(kind);
    }
    s["POST /api/v6/base64_to_url"] = {
        {"type", "object"},
        {"properties", {{"key", stringProp("API key")}, {"base64_string", stringProp("image, at most 5 MB decoded")}}},
        {"required", json::array({"base64_string"})}};
    s["POST /api/v3/base64_crop"] = s["POST /api/v6/base64_to_url"];
    s["POST /api/v3/fine_tune"] = trainingSchema(false);
    s["POST /api/v3/lora_fine_tune"] = trainingSchema(true);
    const json keyOnly{{"type", "object"}, {"properties", {{"key", stringProp("API key")}}}};
    for (const std::string path : {"/api/v3/fine_tune_status/{id}", "/api/v3/cancel_training/{id}",
                                   "/api/v3/cancle_training/{id}", "/api/v3/finetune/delete/{id}"}) {
        s["POST " + path] = keyOnly;
    }
    s["POST /api/v3/finetune_list"] = {
        {"type", "object"},
        {"properties",
         {{"key", stringProp("API key")}, {"limit", numberProp("1 to 100, default 20")}, {"offset", numberProp("")}}}};
    return s;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

json openApiDocument(const Router& router, const std::string& version) {
    const auto schemas = requestSchemas();
    const json errorRef{{"$ref", "#/components/schemas/Error"}};
    json paths = json::object();
    for (const auto& route : router.routes()) {
        json op{{"summary", route.summary}};
        json params = json::array();
        for (std::size_t pos = route.pattern.find('{'); pos != std::string::npos;
             pos = route.pattern.find('{', pos + 1)) {
            const auto end = route.pattern.find('}', pos);
            params.push_back({{"name", route.pattern.substr(pos + 1, end - pos - 1)},
                              {"in", "path"},
                              {"required", true},
                              {"schema", {{"type", "string"}}}});
        }
        if (!params.empty()) op["parameters"] = params;
        const auto it = schemas.find(route.method + " " + route.pattern);
        if (it != schemas.end()) {
            op["requestBody"] = {{"required", true},
                                 {"content", {{"application/json", {{"schema", it->second}}}}},
                                 {"description", "at most " + std::to_string(route.bodyLimit) + " bytes"}};
        }
        op["responses"] = {
            {"200",
             {{"description",
               "success (JSON; status \"success\", \"processing\", "
               "\"failed\" or \"cancelled\" for generation requests)"}}},
            {"4XX", {{"description", "error"}, {"content", {{"application/json", {{"schema", errorRef}}}}}}}};
        paths[route.pattern][lower(route.method)] = op;
    }
    json error{{"type", "object"},
               {"properties",
                {{"status", {{"type", "string"}, {"enum", json::array({"error"})}}},
                 {"message", {{"type", "string"}}},
                 {"messege", {{"type", "string"}, {"description", "legacy spelling, same text"}}},
                 {"errors", {{"type", "object"}, {"description", "field -> list of problems"}}},
                 {"retry_after", {{"type", "integer"}}}}}};
    json doc;
    doc["openapi"] = "3.0.3";
    doc["info"] = {
        {"title", "Easel REST API"},
        {"version", version},
        {"description", "Self-hosted Stable Diffusion API, compatible with the hosted service's v3/v6 shapes."}};
    doc["servers"] = json::array({{{"url", "http://127.0.0.1:7860"}}});
    doc["paths"] = paths;
    doc["components"]["schemas"]["Error"] = error;
    return doc;
}

}  // namespace easel::server
