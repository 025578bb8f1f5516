#include "ui/api_error.h"

#include <gtest/gtest.h>

namespace easel::ui {
namespace {

TEST(ApiErrorTest, SuccessIsNoError) {
    EXPECT_FALSE(mapHTTPResponse(200, R"({"status":"success","id":1})", {}));
    EXPECT_FALSE(mapHTTPResponse(200, R"({"status":"processing","id":1})", {}));
}

TEST(ApiErrorTest, StatusErrorInA200IsFailed) {
    const auto e = mapHTTPResponse(200, R"({"status":"error","message":"prompt is empty"})", {});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, ApiErrorKind::Failed);
    EXPECT_EQ(e->message, QStringLiteral("prompt is empty"));
    const auto failed = mapHTTPResponse(200, R"({"status":"failed","message":"out of memory","id":3})", {});
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->kind, ApiErrorKind::Failed);
}

TEST(ApiErrorTest, NonJSONSuccessIsInvalidResponse) {
    const auto e = mapHTTPResponse(200, "<html>proxy</html>", {});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, ApiErrorKind::InvalidResponse);
}

TEST(ApiErrorTest, StatusCodesMapToKinds) {
    const auto body = QByteArray(R"({"status":"error","message":"m"})");
    EXPECT_EQ(mapHTTPResponse(401, body, {})->kind, ApiErrorKind::Unauthorized);
    EXPECT_EQ(mapHTTPResponse(402, body, {})->kind, ApiErrorKind::QuotaExhausted);
    EXPECT_EQ(mapHTTPResponse(404, body, {})->kind, ApiErrorKind::NotFound);
    EXPECT_EQ(mapHTTPResponse(400, body, {})->kind, ApiErrorKind::BadRequest);
    EXPECT_EQ(mapHTTPResponse(413, body, {})->kind, ApiErrorKind::BadRequest);
    EXPECT_EQ(mapHTTPResponse(503, body, {})->kind, ApiErrorKind::ServerError);
    EXPECT_EQ(mapHTTPResponse(500, "", {})->message, QStringLiteral("HTTP status 500."));
}

TEST(ApiErrorTest, RateLimitReadsBodyThenHeader) {
    const auto fromBody = mapHTTPResponse(429, R"({"status":"error","message":"slow down","retry_after":12})", "30");
    ASSERT_TRUE(fromBody);
    EXPECT_EQ(fromBody->kind, ApiErrorKind::RateLimited);
    EXPECT_EQ(fromBody->retryAfterSeconds, 12);
    EXPECT_TRUE(fromBody->userText().contains(QStringLiteral("12 second")));
    const auto fromHeader = mapHTTPResponse(429, R"({"status":"error","message":"slow down"})", " 30 ");
    EXPECT_EQ(fromHeader->retryAfterSeconds, 30);
    EXPECT_EQ(mapHTTPResponse(429, "", "")->retryAfterSeconds, -1);
}

TEST(ApiErrorTest, FieldErrorsAreListed) {
    const auto e = mapHTTPResponse(
        400,
        R"({"status":"error","message":"invalid parameters","errors":{"width":["must be a multiple of 8"],"steps":"too many"}})",
        {});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->fieldErrors.value(QStringLiteral("width")), QStringList{QStringLiteral("must be a multiple of 8")});
    EXPECT_EQ(e->fieldErrors.value(QStringLiteral("steps")), QStringList{QStringLiteral("too many")});
    EXPECT_TRUE(e->userText().contains(QStringLiteral("width: must be a multiple of 8")));
}

TEST(ApiErrorTest, TitlesAndAdviceAreHuman) {
    EXPECT_EQ(mapHTTPResponse(402, R"({"status":"error","message":"20 of 20 used"})", {})->title(),
              QStringLiteral("Quota exhausted"));
    const auto unreachable = unreachableError(QStringLiteral("Connection refused"));
    EXPECT_EQ(unreachable.kind, ApiErrorKind::Unreachable);
    EXPECT_EQ(unreachable.title(), QStringLiteral("Server unreachable"));
    EXPECT_TRUE(unreachable.userText().startsWith(QStringLiteral("Connection refused")));
}

}  // namespace
}  // namespace easel::ui
