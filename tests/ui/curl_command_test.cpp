#include "ui/curl_command.h"

#include <gtest/gtest.h>

#include <QJsonDocument>
#include <QProcess>
#include <QStandardPaths>

#include "ui/generation_params.h"

namespace easel::ui {
namespace {

// Runs `command` in bash with a fake curl that prints the body it would send; the shell, not our
// test, decides what the quoting means.
QString bodyBashWouldSend(const QString& command) {
    const QString script = QStringLiteral(
                               "base64() { printf 'B64(%s)' \"$2\"; }\n"
                               "curl() { while [ $# -gt 0 ]; do if [ \"$1\" = -d ]; then printf '%s' \"$2\"; "
                               "return; fi; if [ \"$1\" = --data-binary ]; then cat; return; fi; shift; done; }\n") +
                           command;
    QProcess bash;
    bash.start(QStringLiteral("bash"), {QStringLiteral("-c"), script});
    bash.waitForFinished(10000);
    return QString::fromUtf8(bash.readAllStandardOutput()).trimmed();
}

TEST(CurlCommandTest, ShellQuoteEscapesSingleQuotes) {
    EXPECT_EQ(shellQuote(QStringLiteral("it's")), QStringLiteral("'it'\\''s'"));
    EXPECT_EQ(shellQuote(QString()), QStringLiteral("''"));
}

TEST(CurlCommandTest, Text2ImgCommandSendsTheExactBody) {
    GenerationParams p;
    p.prompt = QStringLiteral("a cat's \"hat\" $HOME `x` \\ \n second line");
    p.seed = 42;
    const auto body = requestBody(GenerationKind::Text2Img, p, QStringLiteral("KEY123"));
    const auto command =
        curlCommand(QUrl(QStringLiteral("http://127.0.0.1:7860")), endpointPath(GenerationKind::Text2Img), body);
    EXPECT_TRUE(command.startsWith(QStringLiteral("curl -sS -X POST 'http://127.0.0.1:7860/api/v6/images/text2img'")));
    EXPECT_TRUE(command.contains(QStringLiteral("Content-Type: application/json")));
    if (QStandardPaths::findExecutable(QStringLiteral("bash")).isEmpty()) GTEST_SKIP() << "no bash";
    const auto sent = QJsonDocument::fromJson(bodyBashWouldSend(command).toUtf8()).object();
    EXPECT_EQ(sent, body);
}

TEST(CurlCommandTest, ImagesBecomeBase64Substitutions) {
    GenerationParams p;
    p.prompt = QStringLiteral("keep $this and `that` \\ literal");
    GenerationImages images;
    images.init = QImage(8, 8, QImage::Format_RGB32);
    images.init.fill(Qt::red);
    images.mask = QImage(8, 8, QImage::Format_Grayscale8);
    images.mask.fill(255);
    const auto body = requestBody(GenerationKind::Inpaint, p, QStringLiteral("K"), images);
    const auto command = curlCommand(QUrl(QStringLiteral("http://h:1/")), endpointPath(GenerationKind::Inpaint), body,
                                     {QStringLiteral("my init.png"), QStringLiteral("mask.png")});
    EXPECT_FALSE(command.contains(body.value(QStringLiteral("init_image")).toString()));
    EXPECT_TRUE(command.contains(QStringLiteral("$(base64 -w0 'my init.png')")));
    if (QStandardPaths::findExecutable(QStringLiteral("bash")).isEmpty()) GTEST_SKIP() << "no bash";
    const auto sent = QJsonDocument::fromJson(bodyBashWouldSend(command).toUtf8()).object();
    EXPECT_EQ(sent.value(QStringLiteral("prompt")).toString(), p.prompt);
    EXPECT_EQ(sent.value(QStringLiteral("init_image")).toString(), QStringLiteral("B64(my init.png)"));
    EXPECT_EQ(sent.value(QStringLiteral("mask_image")).toString(), QStringLiteral("B64(mask.png)"));
    EXPECT_EQ(sent.value(QStringLiteral("strength")).toDouble(), p.strength);
}

}  // namespace
}  // namespace easel::ui
