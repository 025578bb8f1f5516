#include "ui/api_client.h"

#include <gtest/gtest.h>

#include <QBuffer>
#include <QImage>
#include <QJsonArray>

#include "fake_api_server.h"
#include "ui/api_types.h"
#include "ui_test_support.h"

namespace easel::ui {
namespace {

using testing::CannedResponse;
using testing::FakeApiServer;
using testing::RecordedRequest;

// A 4x2 red PNG as the server sends a live preview.
QString previewDataUrl() {
    QImage img(4, 2, QImage::Format_RGB888);
    img.fill(Qt::red);
    QByteArray png;
    QBuffer buffer(&png);
    buffer.open(QIODevice::WriteOnly);
    img.save(&buffer, "PNG");
    return QStringLiteral("data:image/png;base64,") + QString::fromLatin1(png.toBase64());
}

QJsonObject success(QJsonObject o = {}) {
    o.insert(QStringLiteral("status"), QStringLiteral("success"));
    return o;
}

// Runs one call and waits for its callback.
ApiResult call(const std::function<void(ApiCallback)>& start) {
    std::optional<ApiResult> result;
    start([&](const ApiResult& r) { result = r; });
    EXPECT_TRUE(waitFor([&] { return result.has_value(); }));
    return result.value_or(ApiResult{});
}

TEST(ApiClientTest, LoginStoresTheTokenAndSendsItAsBearer) {
    FakeApiServer server;
    server.setHandler([](const RecordedRequest& r) {
        if (r.path == QStringLiteral("/api/v1/auth/login")) {
            return CannedResponse::json(
                200, success({{QStringLiteral("token"), QStringLiteral("tok")}, {QStringLiteral("user_id"), 1}}));
        }
        return CannedResponse::json(
            200, success({{QStringLiteral("user_id"), 1},
                          {QStringLiteral("email"), QStringLiteral("a@b.c")},
                          {QStringLiteral("plan"), QStringLiteral("free")},
                          {QStringLiteral("quota"), QJsonObject{{QStringLiteral("used"), 7},
                                                                {QStringLiteral("limit"), 20},
                                                                {QStringLiteral("left"), 13}}},
                          {QStringLiteral("limits"), QJsonObject{{QStringLiteral("requests_per_minute"), 10},
                                                                 {QStringLiteral("max_steps"), 50}}}}));
    });
    ApiClient client(server.url());
    const auto login =
        call([&](ApiCallback cb) { client.login(QStringLiteral("a@b.c"), QStringLiteral("pw"), nullptr, cb); });
    ASSERT_TRUE(login.ok());
    EXPECT_EQ(client.sessionToken(), QStringLiteral("tok"));
    EXPECT_EQ(server.requests()[0].method, "POST");
    EXPECT_EQ(server.requests()[0].json().value(QStringLiteral("password")).toString(), QStringLiteral("pw"));
    const auto account = call([&](ApiCallback cb) { client.account(nullptr, cb); });
    ASSERT_TRUE(account.ok());
    EXPECT_EQ(server.requests()[1].method, "GET");
    EXPECT_EQ(server.requests()[1].path, QStringLiteral("/api/v1/account"));
    EXPECT_EQ(server.requests()[1].headers.value("authorization"), "Bearer tok");
    const auto info = AccountInfo::fromJSON(account.json);
    EXPECT_EQ(info.quotaText(), QStringLiteral("7 of 20 free generations"));
    EXPECT_EQ(info.quotaLeft, 13);
    EXPECT_EQ(info.maxSteps, 50);
}

TEST(ApiClientTest, GenerationCallsCarryTheKey) {
    FakeApiServer server;
    server.setHandler([](const RecordedRequest&) {
        return CannedResponse::json(
            200, QJsonObject{{QStringLiteral("status"), QStringLiteral("processing")},
                             {QStringLiteral("id"), 12},
                             {QStringLiteral("eta"), 3},
                             {QStringLiteral("queue_position"), 0},
                             {QStringLiteral("progress"), QJsonObject{{QStringLiteral("step"), 3},
                                                                      {QStringLiteral("total"), 20},
                                                                      {QStringLiteral("preview"), previewDataUrl()}}}});
    });
    ApiClient client(server.url());
    client.setApiKey(QStringLiteral("KEY"));
    GenerationParams p;
    p.prompt = QStringLiteral("cat");
    const auto submitted = call([&](ApiCallback cb) {
        client.submit(GenerationKind::Text2Img, requestBody(GenerationKind::Text2Img, p, {}), nullptr, cb);
    });
    ASSERT_TRUE(submitted.ok());
    const auto status = GenerationStatus::fromJSON(submitted.json);
    EXPECT_FALSE(status.finished);
    EXPECT_EQ(status.id, 12);
    EXPECT_EQ(status.step, 3);
    EXPECT_EQ(status.totalSteps, 20);
    ASSERT_FALSE(status.preview.isNull());
    EXPECT_EQ(status.preview.size(), QSize(4, 2));
    EXPECT_EQ(status.preview.pixelColor(1, 1), QColor(Qt::red));
    EXPECT_EQ(server.requests()[0].path, QStringLiteral("/api/v6/images/text2img"));
    EXPECT_EQ(server.requests()[0].json().value(QStringLiteral("key")).toString(), QStringLiteral("KEY"));
    EXPECT_EQ(server.requests()[0].headers.value("x-api-key"), "KEY");
    call([&](ApiCallback cb) { client.fetch(12, nullptr, cb); });
    EXPECT_EQ(server.requests()[1].path, QStringLiteral("/api/v6/images/fetch"));
    EXPECT_EQ(server.requests()[1].json().value(QStringLiteral("request_id")).toInt(), 12);
    call([&](ApiCallback cb) { client.cancel(12, nullptr, cb); });
    EXPECT_EQ(server.requests()[2].path, QStringLiteral("/api/v6/images/cancel"));
    call([&](ApiCallback cb) { client.history(20, 40, nullptr, cb); });
    EXPECT_EQ(server.requests()[3].path, QStringLiteral("/api/v1/history?limit=20&offset=40"));
    EXPECT_EQ(server.requests()[3].headers.value("x-api-key"), "KEY");
    call([&](ApiCallback cb) { client.deleteHistory(12, nullptr, cb); });
    EXPECT_EQ(server.requests()[4].method, "DELETE");
    EXPECT_EQ(server.requests()[4].path, QStringLiteral("/api/v1/history/12"));
    call([&](ApiCallback cb) { client.deleteAccount(QStringLiteral("pw"), nullptr, cb); });
    EXPECT_EQ(server.requests()[5].method, "DELETE");
    EXPECT_EQ(server.requests()[5].json().value(QStringLiteral("password")).toString(), QStringLiteral("pw"));
}

TEST(ApiClientTest, ErrorsAreTyped) {
    FakeApiServer server;
    server.setHandler([](const RecordedRequest& r) {
        if (r.path.startsWith(QStringLiteral("/api/v1/models"))) {
            return CannedResponse{
                429, R"({"status":"error","message":"rate limited","retry_after":7})", {{"Retry-After", "9"}}};
        }
        return CannedResponse::json(402,
                                    {{QStringLiteral("status"), QStringLiteral("error")},
                                     {QStringLiteral("message"), QStringLiteral("20 of 20 free generations used")}});
    });
    ApiClient client(server.url());
    int failures = 0;
    QObject::connect(&client, &ApiClient::requestFailed, [&] { ++failures; });
    const auto limited = call([&](ApiCallback cb) { client.models(nullptr, cb); });
    ASSERT_FALSE(limited.ok());
    EXPECT_EQ(limited.error->kind, ApiErrorKind::RateLimited);
    EXPECT_EQ(limited.error->retryAfterSeconds, 7);
    const auto quota = call([&](ApiCallback cb) { client.submit(GenerationKind::Text2Img, {}, nullptr, cb); });
    ASSERT_FALSE(quota.ok());
    EXPECT_EQ(quota.error->kind, ApiErrorKind::QuotaExhausted);
    EXPECT_EQ(quota.error->message, QStringLiteral("20 of 20 free generations used"));
    EXPECT_EQ(failures, 2);
}

TEST(ApiClientTest, ModelsOfOneCategoryAskTheServerForThemAndCarryTheFamily) {
    FakeApiServer server;
    server.setHandler([](const RecordedRequest&) {
        return CannedResponse::json(
            200, success({{QStringLiteral("models"),
                           QJsonArray{QJsonObject{{QStringLiteral("model_id"), QStringLiteral("pixel-art")},
                                                  {QStringLiteral("model_category"), QStringLiteral("lora")},
                                                  {QStringLiteral("family"), QStringLiteral("sd1")}},
                                      QJsonObject{{QStringLiteral("model_id"), QStringLiteral("sd15")},
                                                  {QStringLiteral("family"), QJsonValue()}}}}}));
    });
    ApiClient client(server.url());
    client.setApiKey(QStringLiteral("k"));
    const auto r = call([&](ApiCallback cb) { client.models(nullptr, cb, QStringLiteral("lora")); });
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(server.requests().value(0).path, QStringLiteral("/api/v1/models?category=lora"));
    const auto models = modelsFromJSON(r.json);
    ASSERT_EQ(models.size(), 2);
    EXPECT_TRUE(models[0].isLora());
    EXPECT_EQ(models[0].family, QStringLiteral("sd1"));
    // Older servers send no category: a checkpoint, family unknown.
    EXPECT_TRUE(models[1].isCheckpoint());
    EXPECT_TRUE(models[1].family.isEmpty());
    EXPECT_EQ(modelsOfCategory(models, QStringLiteral("lora")).size(), 1);
    EXPECT_EQ(modelsOfCategory(models, QStringLiteral("stable_diffusion")).value(0).modelId, QStringLiteral("sd15"));
}

TEST(ApiClientTest, UnreachableServer) {
    QUrl url;
    {
        FakeApiServer server;  // take a free port, then close it
        url = server.url();
    }
    ApiClient client(url);
    const auto r = call([&](ApiCallback cb) { client.account(nullptr, cb); });
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->kind, ApiErrorKind::Unreachable);
}

TEST(ApiClientTest, CallbackIsDroppedWhenItsContextDies) {
    FakeApiServer server;
    server.setHandler([](const RecordedRequest&) { return CannedResponse::json(200, success()); });
    ApiClient client(server.url());
    bool called = false;
    auto context = std::make_unique<QObject>();
    client.account(context.get(), [&](const ApiResult&) { called = true; });
    context.reset();
    std::optional<ApiResult> second;
    client.account(nullptr, [&](const ApiResult& r) { second = r; });
    ASSERT_TRUE(waitFor([&] { return second.has_value(); }));
    EXPECT_FALSE(called);
}

TEST(ApiClientTest, FetchImageReturnsBytes) {
    FakeApiServer server;
    server.setHandler([](const RecordedRequest& r) {
        if (r.path == QStringLiteral("/images/abc.png")) return CannedResponse{200, "PNGDATA", {}, "image/png"};
        return CannedResponse{404, R"({"status":"error","message":"no such image"})", {}};
    });
    ApiClient client(server.url());
    std::optional<QByteArray> bytes;
    client.fetchImage(QUrl(server.url().toString() + QStringLiteral("/images/abc.png")), nullptr,
                      [&](const QByteArray& b, const std::optional<ApiError>&) { bytes = b; });
    ASSERT_TRUE(waitFor([&] { return bytes.has_value(); }));
    EXPECT_EQ(*bytes, "PNGDATA");
    std::optional<ApiError> error;
    client.fetchImage(QUrl(QStringLiteral("/images/missing.png")), nullptr,
                      [&](const QByteArray&, const std::optional<ApiError>& e) { error = e.value_or(ApiError{}); });
    ASSERT_TRUE(waitFor([&] { return error.has_value(); }));
    EXPECT_EQ(error->kind, ApiErrorKind::NotFound);
}

}  // namespace
}  // namespace easel::ui
