#include "ui/image_to_image_pane.h"

#include <QHBoxLayout>
#include <QPushButton>
#include <QVBoxLayout>

#include "ui/init_image_view.h"

namespace easel::ui {

ImageToImagePane::ImageToImagePane(QWidget* parent)
    : GenerationPane(GenerationKind::Img2Img, parent), m_view(new InitImageView(this)) {
    m_view->setObjectName(QStringLiteral("init_image"));
    auto* area = new QWidget(this);
    auto* layout = new QVBoxLayout(area);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* buttons = new QHBoxLayout;
    auto* open = new QPushButton(tr("&Open…"), area);
    auto* paste = new QPushButton(tr("P&aste"), area);
    buttons->addWidget(open);
    buttons->addWidget(paste);
    buttons->addStretch();
    layout->addLayout(buttons);
    layout->addWidget(m_view, 1);
    setImageArea(area);
    connect(open, &QPushButton::clicked, m_view, &InitImageView::openFile);
    connect(paste, &QPushButton::clicked, m_view, &InitImageView::paste);
}

GenerationImages ImageToImagePane::images() const { return {m_view->image(), {}}; }

QString ImageToImagePane::missingInput() const {
    if (m_view->image().isNull()) return tr("Choose an init image first (Open…, paste or drop one).");
    return GenerationPane::missingInput();
}

void ImageToImagePane::setInitImage(const QImage& image) { m_view->setImage(image); }

}  // namespace easel::ui
