#include "ui/queue_panel.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/generation_queue.h"

namespace easel::ui {

namespace {

constexpr int kPreviewSide = 96;

QString summary(const QueuedJob& job) {
    QString prompt = job.params.prompt.simplified();
    if (prompt.size() > 40) prompt = prompt.left(39) + QChar(0x2026);
    return QStringLiteral("#%1 %2 — %3").arg(job.localId).arg(prompt, job.describe());
}

}  // namespace

QueuePanel::QueuePanel(GenerationQueue* queue, QWidget* parent)
    : QWidget(parent),
      m_queue(queue),
      m_progress(new QProgressBar(this)),
      m_preview(new QLabel(this)),
      m_status(new QLabel(this)),
      m_cancel(new QPushButton(tr("Cancel"), this)),
      m_pending(new QListWidget(this)) {
    m_progress->setObjectName(QStringLiteral("progress"));
    m_cancel->setObjectName(QStringLiteral("cancel"));
    m_cancel->setToolTip(tr("Cancel the running request (Esc)"));
    m_pending->setObjectName(QStringLiteral("pending"));
    m_pending->setMaximumHeight(110);
    m_preview->setObjectName(QStringLiteral("preview"));
    m_preview->setFixedSize(kPreviewSide, kPreviewSide);
    m_preview->setAlignment(Qt::AlignCenter);
    m_preview->setToolTip(tr("Live preview of the running request"));
    auto* outer = new QHBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    outer->addWidget(m_preview, 0, Qt::AlignTop);
    auto* layout = new QVBoxLayout;
    auto* row = new QHBoxLayout;
    row->addWidget(m_progress, 1);
    row->addWidget(m_cancel);
    layout->addLayout(row);
    layout->addWidget(m_status);
    layout->addWidget(m_pending);
    outer->addLayout(layout, 1);
    connect(m_cancel, &QPushButton::clicked, m_queue, &GenerationQueue::cancelCurrent);
    connect(m_queue, &GenerationQueue::jobsChanged, this, &QueuePanel::refresh);
    refresh();
}

void QueuePanel::refresh() {
    const auto jobs = m_queue->activeJobs();
    m_cancel->setEnabled(!jobs.isEmpty());
    const QImage preview = jobs.isEmpty() ? QImage() : jobs.front().status.preview;
    if (preview.isNull()) {
        m_preview->clear();
    } else {
        // Small previews (64x64 latents or images) are shown with hard pixels rather than blurred.
        const auto mode = preview.width() < kPreviewSide ? Qt::FastTransformation : Qt::SmoothTransformation;
        m_preview->setPixmap(QPixmap::fromImage(preview.scaled(kPreviewSide, kPreviewSide, Qt::KeepAspectRatio, mode)));
    }
    m_preview->setVisible(!preview.isNull());
    if (jobs.isEmpty()) {
        m_progress->setRange(0, 1);
        m_progress->setValue(0);
        m_progress->setFormat(tr("Idle"));
        m_status->setText(tr("Ctrl+Enter generates; requests queue up here."));
    } else {
        const auto& current = jobs.front();
        const int total = current.status.totalSteps > 0 ? current.status.totalSteps : current.params.steps;
        m_progress->setRange(0, std::max(total, 1));
        m_progress->setValue(current.status.step);
        m_progress->setFormat(current.describe());
        m_status->setText(summary(current));
    }
    m_pending->clear();
    for (qsizetype i = 1; i < jobs.size(); ++i) {
        auto* item = new QListWidgetItem(m_pending);
        auto* row = new QWidget(m_pending);
        auto* layout = new QHBoxLayout(row);
        layout->setContentsMargins(4, 0, 4, 0);
        layout->addWidget(new QLabel(summary(jobs[i]), row), 1);
        auto* cancel = new QToolButton(row);
        cancel->setText(tr("Cancel"));
        cancel->setObjectName(QStringLiteral("cancel_%1").arg(jobs[i].localId));
        cancel->setEnabled(!jobs[i].cancelRequested);
        const int id = jobs[i].localId;
        // Queued: refresh() deletes this button, which must not happen inside its own clicked().
        connect(
            cancel, &QToolButton::clicked, m_queue, [this, id] { m_queue->cancel(id); }, Qt::QueuedConnection);
        layout->addWidget(cancel);
        item->setSizeHint(row->sizeHint());
        m_pending->setItemWidget(item, row);
    }
    m_pending->setVisible(jobs.size() > 1);
}

}  // namespace easel::ui
