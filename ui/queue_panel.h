#pragma once
// Progress of the running request (bar with step count and ETA, Cancel) and the requests waiting
// behind it, each with its own cancel button.

#include <QWidget>

class QLabel;
class QListWidget;
class QProgressBar;
class QPushButton;

namespace easel::ui {

class GenerationQueue;

class QueuePanel : public QWidget {
    Q_OBJECT
public:
    explicit QueuePanel(GenerationQueue* queue, QWidget* parent = nullptr);

private:
    void refresh();

    GenerationQueue* m_queue;
    QProgressBar* m_progress;
    QLabel* m_preview;
    QLabel* m_status;
    QPushButton* m_cancel;
    QListWidget* m_pending;
};

}  // namespace easel::ui
