#include "ui/text_to_image_pane.h"

namespace easel::ui {

TextToImagePane::TextToImagePane(QWidget* parent) : GenerationPane(GenerationKind::Text2Img, parent) {}

}  // namespace easel::ui
