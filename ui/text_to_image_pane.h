#pragma once
// txt2img: the shared prompts and form, nothing more.

#include "ui/generation_pane.h"

namespace easel::ui {

class TextToImagePane : public GenerationPane {
    Q_OBJECT
public:
    explicit TextToImagePane(QWidget* parent = nullptr);
};

}  // namespace easel::ui
