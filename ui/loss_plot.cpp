#include "ui/loss_plot.h"

#include <QPainter>
#include <QPainterPath>
#include <algorithm>
#include <cmath>

namespace easel::ui {

namespace {

// The loss range shown: a little room above and below, and some height for a flat curve.
std::pair<double, double> valueRange(const QList<QPointF>& points) {
    double low = points.front().y();
    double high = low;
    for (const auto& p : points) {
        low = std::min(low, p.y());
        high = std::max(high, p.y());
    }
    double pad = (high - low) * 0.08;
    if (pad <= 0) pad = std::max(std::abs(high) * 0.1, 0.01);
    // A loss is never negative: no axis label below zero for a curve that ends near it.
    return {low >= 0 ? std::max(0.0, low - pad) : low - pad, high + pad};
}

QString valueLabel(double value) { return QString::number(value, 'g', 3); }

}  // namespace

LossPlot::LossPlot(QWidget* parent) : QWidget(parent) {
    setObjectName(QStringLiteral("loss_plot"));
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void LossPlot::setPoints(const QList<QPointF>& points, int totalSteps) {
    if (points == m_points && totalSteps == m_totalSteps) return;
    m_points = points;
    m_totalSteps = totalSteps;
    update();
}

QList<QPointF> LossPlot::smoothed() const {
    QList<QPointF> out;
    double mean = 0;
    for (qsizetype i = 0; i < m_points.size(); ++i) {
        mean = i == 0 ? m_points[i].y() : kSmoothing * mean + (1 - kSmoothing) * m_points[i].y();
        out.append(QPointF(m_points[i].x(), mean));
    }
    return out;
}

void LossPlot::paintEvent(QPaintEvent*) {
    QPainter painter(this);
    painter.setRenderHint(QPainter::Antialiasing);
    const QPalette pal = palette();
    painter.fillRect(rect(), pal.base());
    painter.setPen(pal.color(QPalette::Mid));
    painter.drawRect(rect().adjusted(0, 0, -1, -1));
    const QFontMetrics fm = fontMetrics();
    if (m_points.isEmpty()) {
        painter.setPen(pal.color(QPalette::PlaceholderText));
        painter.drawText(rect().adjusted(8, 8, -8, -8), Qt::AlignCenter | Qt::TextWordWrap,
                         tr("The loss curve appears here once training runs."));
        return;
    }
    const auto range = valueRange(m_points);
    const double low = range.first;
    const double high = range.second;
    const double lastStep = std::max<double>(m_totalSteps, m_points.back().x());
    const double firstStep = std::min(0.0, m_points.front().x());
    const int left = 10 + std::max(fm.horizontalAdvance(valueLabel(low)), fm.horizontalAdvance(valueLabel(high)));
    const QRectF area(left, fm.height() + 6, width() - left - 12, height() - 2 * fm.height() - 14);
    if (area.width() < 10 || area.height() < 10) return;
    auto at = [&](const QPointF& p) {
        const double x = (p.x() - firstStep) / std::max(1e-9, lastStep - firstStep);
        const double y = (p.y() - low) / (high - low);
        return QPointF(area.left() + x * area.width(), area.bottom() - y * area.height());
    };

    // Three grid lines with their loss values, and the step axis below.
    painter.setFont(font());
    for (int i = 0; i <= 2; ++i) {
        const double value = low + (high - low) * i / 2.0;
        const double y = area.bottom() - area.height() * i / 2.0;
        painter.setPen(QPen(pal.color(QPalette::Midlight), 1, Qt::DotLine));
        painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y));
        painter.setPen(pal.color(QPalette::PlaceholderText));
        painter.drawText(QRectF(0, y - fm.height() / 2.0, left - 6, fm.height()), Qt::AlignRight | Qt::AlignVCenter,
                         valueLabel(value));
    }
    const QRectF axis(area.left(), area.bottom() + 4, area.width(), fm.height());
    painter.drawText(axis, Qt::AlignLeft | Qt::AlignTop, QString::number(static_cast<qint64>(firstStep)));
    painter.drawText(axis, Qt::AlignRight | Qt::AlignTop, tr("step %1").arg(static_cast<qint64>(lastStep)));

    QPainterPath raw;
    QPainterPath mean;
    const QList<QPointF> smooth = smoothed();
    for (qsizetype i = 0; i < m_points.size(); ++i) {
        if (i == 0) {
            raw.moveTo(at(m_points[i]));
            mean.moveTo(at(smooth[i]));
        } else {
            raw.lineTo(at(m_points[i]));
            mean.lineTo(at(smooth[i]));
        }
    }
    QColor faint = pal.color(QPalette::Highlight);
    faint.setAlpha(90);
    painter.setPen(QPen(faint, 1));
    painter.drawPath(raw);
    painter.setPen(QPen(pal.color(QPalette::Highlight), 2));
    painter.drawPath(mean);
    if (m_points.size() == 1) painter.drawEllipse(at(m_points.front()), 2.5, 2.5);

    painter.setPen(pal.color(QPalette::Text));
    painter.drawText(QRectF(area.left(), 2, area.width(), fm.height()), Qt::AlignRight | Qt::AlignTop,
                     tr("loss %1 (mean %2)").arg(valueLabel(m_points.back().y()), valueLabel(smooth.back().y())));
}

}  // namespace easel::ui
