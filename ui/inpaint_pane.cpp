#include "ui/inpaint_pane.h"

#include <QApplication>
#include <QButtonGroup>
#include <QClipboard>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QShortcut>
#include <QSlider>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/image_mime.h"
#include "ui/init_image_view.h"
#include "ui/mask_canvas.h"

namespace easel::ui {

InpaintPane::InpaintPane(QWidget* parent)
    : GenerationPane(GenerationKind::Inpaint, parent), m_canvas(new MaskCanvas(this)) {
    m_canvas->setObjectName(QStringLiteral("mask_canvas"));
    auto* area = new QWidget(this);
    auto* layout = new QVBoxLayout(area);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* tools = new QHBoxLayout;
    auto* open = new QPushButton(tr("&Open…"), area);
    auto* paste = new QPushButton(tr("P&aste"), area);
    auto* brush = new QToolButton(area);
    brush->setText(tr("&Brush"));
    brush->setCheckable(true);
    brush->setChecked(true);
    auto* eraser = new QToolButton(area);
    eraser->setText(tr("&Eraser"));
    eraser->setObjectName(QStringLiteral("eraser"));
    eraser->setCheckable(true);
    auto* group = new QButtonGroup(area);
    group->addButton(brush);
    group->addButton(eraser);
    auto* size = new QSlider(Qt::Horizontal, area);
    size->setObjectName(QStringLiteral("brush_size"));
    size->setRange(1, 128);
    size->setValue(m_canvas->brushSize());
    size->setToolTip(tr("Brush size in image pixels"));
    auto* clear = new QToolButton(area);
    clear->setText(tr("C&lear"));
    auto* invert = new QToolButton(area);
    invert->setText(tr("&Invert"));
    for (QWidget* w : std::initializer_list<QWidget*>{open, paste, brush, eraser}) tools->addWidget(w);
    tools->addWidget(new QLabel(tr("Size"), area));
    tools->addWidget(size, 1);
    tools->addWidget(clear);
    tools->addWidget(invert);
    layout->addLayout(tools);
    layout->addWidget(m_canvas, 1);
    setImageArea(area);

    connect(open, &QPushButton::clicked, this, &InpaintPane::openFile);
    connect(paste, &QPushButton::clicked, this, &InpaintPane::paste);
    connect(eraser, &QToolButton::toggled, m_canvas, &MaskCanvas::setEraser);
    connect(size, &QSlider::valueChanged, m_canvas, &MaskCanvas::setBrushSize);
    connect(clear, &QToolButton::clicked, m_canvas, &MaskCanvas::clear);
    connect(invert, &QToolButton::clicked, m_canvas, &MaskCanvas::invert);
    connect(m_canvas, &MaskCanvas::imageDropped, this, &InpaintPane::setInitImage);
    auto* pasteShortcut =
        new QShortcut(QKeySequence(QKeySequence::Paste), m_canvas, nullptr, nullptr, Qt::WidgetShortcut);
    connect(pasteShortcut, &QShortcut::activated, this, &InpaintPane::paste);
    m_canvas->setFocusPolicy(Qt::StrongFocus);
}

GenerationImages InpaintPane::images() const { return {m_canvas->image(), m_canvas->mask()}; }

QString InpaintPane::missingInput() const {
    if (m_canvas->image().isNull()) return tr("Choose an init image first (Open…, paste or drop one).");
    if (!m_canvas->hasMaskedPixels()) return tr("Paint the area to repaint over the image first.");
    return GenerationPane::missingInput();
}

void InpaintPane::setInitImage(const QImage& image) { m_canvas->setImage(image); }

void InpaintPane::openFile() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open init image"), {}, imageFileFilter());
    if (path.isEmpty()) return;
    const QImage image = loadImageFile(path);
    if (!image.isNull()) setInitImage(image);
}

void InpaintPane::paste() {
    const QImage image = imageFromMime(QApplication::clipboard()->mimeData());
    if (!image.isNull()) setInitImage(image);
}

}  // namespace easel::ui
