#pragma once
// Inpainting: the shared form (with strength) plus the mask painted over the init image.

#include "ui/generation_pane.h"

namespace easel::ui {

class MaskCanvas;

class InpaintPane : public GenerationPane {
    Q_OBJECT
public:
    explicit InpaintPane(QWidget* parent = nullptr);
    GenerationImages images() const override;
    QString missingInput() const override;
    void setInitImage(const QImage& image) override;
    MaskCanvas* canvas() const { return m_canvas; }

private:
    void openFile();
    void paste();

    MaskCanvas* m_canvas;
};

}  // namespace easel::ui
