#pragma once
// What the three playground panes share: prompt and negative prompt (Ctrl+Enter generates), the
// parameter form, Generate and "Copy as cURL", and the latest result. Subclasses add their image
// editor (init image, mask) through setImageArea().

#include <QList>
#include <QPixmap>
#include <QWidget>

#include "ui/generation_params.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QVBoxLayout;

namespace easel::ui {

class ParameterForm;

class GenerationPane : public QWidget {
    Q_OBJECT
public:
    GenerationKind kind() const { return m_kind; }
    ParameterForm* form() const { return m_form; }

    // Prompts plus the form.
    GenerationParams params() const;
    void setParams(const GenerationParams& params);

    virtual GenerationImages images() const { return {}; }
    // Empty when the pane can generate; otherwise what is missing, for the user.
    virtual QString missingInput() const;
    virtual void setInitImage(const QImage&) {}

    // Puts an embedding's trigger word at the cursor of the prompt last edited (the prompt at first).
    void insertTrigger(const QString& trigger);

    // The latest result, shown beside the form (several samples side by side).
    void showResults(const QList<QImage>& images, const QString& caption);
    // A running request's live preview in the result area, until its results arrive.
    void showPreview(const QImage& preview, const QString& caption);
    // Back to the latest result (or the placeholder), e.g. when the previewed request was cancelled.
    void clearPreview();
    bool showingPreview() const { return m_previewing; }

signals:
    void generateRequested();
    void copyCurlRequested();

protected:
    GenerationPane(GenerationKind kind, QWidget* parent);
    void setImageArea(QWidget* area);
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    // Images side by side at the result area's size.
    QPixmap fitted(const QList<QImage>& images) const;

    GenerationKind m_kind;
    QPlainTextEdit* m_prompt;
    QPlainTextEdit* m_negative;
    QPlainTextEdit* m_lastPrompt;  // where insertTrigger() writes
    ParameterForm* m_form;
    QPushButton* m_generate;
    QPushButton* m_curl;
    QVBoxLayout* m_imageColumn;
    QLabel* m_result;
    QLabel* m_resultCaption;
    QPixmap m_resultPixmap;  // what clearPreview() restores
    QString m_resultText;
    bool m_previewing = false;
};

}  // namespace easel::ui
