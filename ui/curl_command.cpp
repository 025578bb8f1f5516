#include "ui/curl_command.h"

#include <QJsonDocument>

namespace easel::ui {

namespace {

// In an unquoted here-document the shell still expands $, ` and \ (before $, `, \ and newline).
QString escapeForHereDoc(const QString& text) {
    QString out;
    out.reserve(text.size());
    for (const QChar c : text) {
        if (c == QLatin1Char('\\') || c == QLatin1Char('$') || c == QLatin1Char('`')) out += QLatin1Char('\\');
        out += c;
    }
    return out;
}

QString placeholderFor(const QString& field) { return QStringLiteral("@@EASEL_IMAGE_%1@@").arg(field); }

}  // namespace

QString shellQuote(const QString& text) {
    QString quoted = text;
    quoted.replace(QLatin1Char('\''), QStringLiteral("'\\''"));
    return QLatin1Char('\'') + quoted + QLatin1Char('\'');
}

QString curlCommand(const QUrl& baseUrl, const QString& path, const QJsonObject& body, const CurlImageFiles& files) {
    const QString url = baseUrl.resolved(QUrl(path)).toString();
    QString head =
        QStringLiteral("curl -sS -X POST %1 \\\n  -H 'Content-Type: application/json' \\\n").arg(shellQuote(url));
    const bool hasImages = body.contains(QStringLiteral("init_image")) || body.contains(QStringLiteral("mask_image"));
    if (!hasImages) {
        const auto json = QString::fromUtf8(QJsonDocument(body).toJson(QJsonDocument::Compact));
        return head + QStringLiteral("  -d ") + shellQuote(json) + QLatin1Char('\n');
    }
    QJsonObject withPlaceholders = body;
    QList<QPair<QString, QString>> substitutions;
    const QPair<QString, QString> imageFields[] = {{QStringLiteral("init_image"), files.init},
                                                   {QStringLiteral("mask_image"), files.mask}};
    for (const auto& [field, file] : imageFields) {
        if (!body.contains(field)) continue;
        withPlaceholders.insert(field, placeholderFor(field));
        substitutions.append({placeholderFor(field), QStringLiteral("$(base64 -w0 %1)").arg(shellQuote(file))});
    }
    QString json = escapeForHereDoc(QString::fromUtf8(QJsonDocument(withPlaceholders).toJson(QJsonDocument::Compact)));
    for (const auto& [placeholder, substitution] : substitutions) json.replace(placeholder, substitution);
    return head + QStringLiteral("  --data-binary @- <<EOF\n") + json + QStringLiteral("\nEOF\n");
}

}  // namespace easel::ui
