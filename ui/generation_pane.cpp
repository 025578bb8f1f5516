#include "ui/generation_pane.h"

#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QPainter>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QVBoxLayout>

#include "ui/lora_picker.h"
#include "ui/parameter_form.h"

namespace easel::ui {

namespace {

QPlainTextEdit* promptEdit(const QString& name, const QString& placeholder, int lines, QWidget* parent) {
    auto* edit = new QPlainTextEdit(parent);
    edit->setObjectName(name);
    edit->setPlaceholderText(placeholder);
    edit->setTabChangesFocus(true);
    edit->setFixedHeight(edit->fontMetrics().lineSpacing() * lines + 12);
    return edit;
}

// Several samples side by side on one pixmap, scaled up without smoothing for tiny images.
QPixmap strip(const QList<QImage>& images, int height) {
    int width = 0;
    for (const auto& image : images) width += image.width() * height / std::max(1, image.height()) + 4;
    QPixmap out(std::max(1, width - 4), height);
    out.fill(Qt::transparent);
    QPainter painter(&out);
    int x = 0;
    for (const auto& image : images) {
        const int w = image.width() * height / std::max(1, image.height());
        painter.setRenderHint(QPainter::SmoothPixmapTransform, image.height() >= height);
        painter.drawImage(QRect(x, 0, w, height), image);
        x += w + 4;
    }
    return out;
}

// Whether `word` stands as a word of its own in `text` ("style" in "a style-x" does not).
bool containsWord(const QString& text, const QString& word) {
    const QRegularExpression re(QStringLiteral("(?<![\\w-])%1(?![\\w-])").arg(QRegularExpression::escape(word)));
    return re.match(text).hasMatch();
}

}  // namespace

GenerationPane::GenerationPane(GenerationKind kind, QWidget* parent)
    : QWidget(parent),
      m_kind(kind),
      m_prompt(
          promptEdit(QStringLiteral("prompt"), tr("Describe the image, e.g. a red star at the top left"), 4, this)),
      m_negative(promptEdit(QStringLiteral("negative_prompt"), tr("What to avoid (optional)"), 2, this)),
      m_lastPrompt(m_prompt),
      m_form(new ParameterForm(kind != GenerationKind::Text2Img, this)),
      m_generate(new QPushButton(tr("&Generate"), this)),
      m_curl(new QPushButton(tr("Copy as c&URL"), this)),
      m_imageColumn(new QVBoxLayout),
      m_result(new QLabel(this)),
      m_resultCaption(new QLabel(this)) {
    m_generate->setObjectName(QStringLiteral("generate"));
    m_generate->setDefault(true);
    m_generate->setToolTip(tr("Generate (Ctrl+Enter)"));
    m_curl->setObjectName(QStringLiteral("copy_curl"));
    m_curl->setToolTip(tr("Copy the API request for these settings as a cURL command"));
    m_result->setObjectName(QStringLiteral("result"));
    m_result->setAlignment(Qt::AlignCenter);
    m_result->setMinimumSize(256, 256);
    m_result->setFrameShape(QFrame::StyledPanel);
    m_result->setText(tr("Results appear here."));
    m_resultCaption->setObjectName(QStringLiteral("result_caption"));
    m_resultCaption->setWordWrap(true);
    m_resultCaption->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* left = new QVBoxLayout;
    auto* promptLabel = new QLabel(tr("&Prompt"), this);
    promptLabel->setBuddy(m_prompt);
    auto* negativeLabel = new QLabel(tr("&Negative prompt"), this);
    negativeLabel->setBuddy(m_negative);
    left->addWidget(promptLabel);
    left->addWidget(m_prompt);
    left->addWidget(negativeLabel);
    left->addWidget(m_negative);
    left->addWidget(m_form);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_curl);
    buttons->addStretch();
    buttons->addWidget(m_generate);
    left->addLayout(buttons);
    left->addStretch();

    m_imageColumn->addWidget(m_result, 1);
    m_imageColumn->addWidget(m_resultCaption);
    auto* layout = new QHBoxLayout(this);
    layout->addLayout(left, 2);
    layout->addLayout(m_imageColumn, 3);

    for (auto* edit : {m_prompt, m_negative}) edit->installEventFilter(this);
    connect(m_generate, &QPushButton::clicked, this, &GenerationPane::generateRequested);
    connect(m_curl, &QPushButton::clicked, this, &GenerationPane::copyCurlRequested);
    connect(m_form->loraPicker(), &LoraPicker::embeddingChosen, this, &GenerationPane::insertTrigger);
}

void GenerationPane::setImageArea(QWidget* area) { m_imageColumn->insertWidget(0, area, 2); }

GenerationParams GenerationPane::params() const {
    GenerationParams p = m_form->params();
    p.prompt = m_prompt->toPlainText();
    p.negativePrompt = m_negative->toPlainText();
    // The server swaps in an embedding's vectors only when embeddings_model names it.
    for (const auto& trigger : m_form->loraPicker()->embeddingTriggers()) {
        if (containsWord(p.prompt, trigger) || containsWord(p.negativePrompt, trigger)) p.embeddings << trigger;
    }
    return p;
}

void GenerationPane::insertTrigger(const QString& trigger) {
    QTextCursor cursor = m_lastPrompt->textCursor();
    const QString text = m_lastPrompt->toPlainText();
    const int at = cursor.selectionStart();
    const int end = cursor.selectionEnd();
    QString insert = trigger;
    if (at > 0 && !text.at(at - 1).isSpace()) insert.prepend(QLatin1Char(' '));
    if (end < text.size() && !text.at(end).isSpace()) insert.append(QLatin1Char(' '));
    cursor.insertText(insert);
    m_lastPrompt->setTextCursor(cursor);
    m_lastPrompt->setFocus();
}

void GenerationPane::setParams(const GenerationParams& params) {
    m_form->setParams(params);
    m_prompt->setPlainText(params.prompt);
    m_negative->setPlainText(params.negativePrompt);
    // Typing on, or inserting a trigger word, continues the prompt rather than starting it.
    for (auto* edit : {m_prompt, m_negative}) edit->moveCursor(QTextCursor::End);
}

QString GenerationPane::missingInput() const {
    return m_prompt->toPlainText().trimmed().isEmpty() ? tr("Type a prompt first.") : QString();
}

QPixmap GenerationPane::fitted(const QList<QImage>& images) const {
    const int height = std::max(64, std::min(m_result->height() - 8, 512));
    const QPixmap pixmap = strip(images, height);
    return pixmap.width() > m_result->width() - 8
               ? pixmap.scaledToWidth(m_result->width() - 8, Qt::SmoothTransformation)
               : pixmap;
}

void GenerationPane::showResults(const QList<QImage>& images, const QString& caption) {
    if (images.isEmpty()) return;
    m_previewing = false;
    m_resultPixmap = fitted(images);
    m_resultText = caption;
    m_result->setPixmap(m_resultPixmap);
    m_resultCaption->setText(caption);
}

void GenerationPane::showPreview(const QImage& preview, const QString& caption) {
    if (preview.isNull()) return;
    m_previewing = true;
    m_result->setPixmap(fitted({preview}));
    m_resultCaption->setText(caption);
}

void GenerationPane::clearPreview() {
    if (!m_previewing) return;
    m_previewing = false;
    if (m_resultPixmap.isNull())
        m_result->setText(tr("Results appear here."));
    else
        m_result->setPixmap(m_resultPixmap);
    m_resultCaption->setText(m_resultText);
}

bool GenerationPane::eventFilter(QObject* watched, QEvent* event) {
    if (event->type() == QEvent::FocusIn && (watched == m_prompt || watched == m_negative))
        m_lastPrompt = static_cast<QPlainTextEdit*>(watched);
    if (event->type() == QEvent::KeyPress) {
        const auto* key = static_cast<QKeyEvent*>(event);
        const bool enter = key->key() == Qt::Key_Return || key->key() == Qt::Key_Enter;
        if (enter && (key->modifiers() & Qt::ControlModifier)) {
            emit generateRequested();
            return true;
        }
    }
    return QWidget::eventFilter(watched, event);
}

}  // namespace easel::ui
