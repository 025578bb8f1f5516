#pragma once
// "Copy as cURL": the shell command that sends the playground's current request, so a user can move
// from the playground to the API in one step. Pure functions, so they are unit tested.

#include <QJsonObject>
#include <QString>
#include <QUrl>

namespace easel::ui {

// `text` as one POSIX shell word in single quotes ('it'\''s').
QString shellQuote(const QString& text);

// A command for POST baseUrl + endpointPath(kind) with `body` (from requestBody()). Image fields
// ("init_image", "mask_image") are not pasted as megabytes of base64: they become
// $(base64 -w0 FILE) substitutions with the file names given here, inside an unquoted here-document
// whose other `\`, `$` and backquotes are escaped.
struct CurlImageFiles {
    QString init = QStringLiteral("init.png");
    QString mask = QStringLiteral("mask.png");
};
QString curlCommand(const QUrl& baseUrl, const QString& path, const QJsonObject& body,
                    const CurlImageFiles& files = {});

}  // namespace easel::ui
