#pragma once
// What the three playground panes share: prompt and negative prompt (Ctrl+Enter generates), the
// parameter form, Generate and "Copy as cURL", and the latest result. Subclasses add their image
// editor (init image, mask) through setImageArea().

#include <QList>
#include <QWidget>

#include "generation_params.h"

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

    // The latest result, shown beside the form (several samples side by side).
    void showResults(const QList<QImage>& images, const QString& caption);

signals:
    void generateRequested();
    void copyCurlRequested();

protected:
    GenerationPane(GenerationKind kind, QWidget* parent);
    void setImageArea(QWidget* area);
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    GenerationKind m_kind;
    QPlainTextEdit* m_prompt;
    QPlainTextEdit* m_negative;
    ParameterForm* m_form;
    QPushButton* m_generate;
    QPushButton* m_curl;
    QVBoxLayout* m_imageColumn;
    QLabel* m_result;
    QLabel* m_resultCaption;
};

}  // namespace easel::ui
