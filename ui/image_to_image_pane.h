#pragma once
// img2img: the shared form (with strength) plus an init image.

#include "ui/generation_pane.h"

namespace easel::ui {

class InitImageView;

class ImageToImagePane : public GenerationPane {
    Q_OBJECT
public:
    explicit ImageToImagePane(QWidget* parent = nullptr);
    GenerationImages images() const override;
    QString missingInput() const override;
    void setInitImage(const QImage& image) override;
    InitImageView* initImageView() const { return m_view; }

private:
    InitImageView* m_view;
};

}  // namespace easel::ui
