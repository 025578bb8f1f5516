#pragma once
// The training loss over the steps, painted with QPainter (a line chart is not worth a QtCharts
// dependency): the raw losses as a faint line, their running mean on top (a single step's loss
// swings with the sampled timestep, the trend is what tells whether training converges).

#include <QList>
#include <QPointF>
#include <QWidget>

namespace easel::ui {

class LossPlot : public QWidget {
    Q_OBJECT
public:
    explicit LossPlot(QWidget* parent = nullptr);

    // (step, loss) in step order; `totalSteps` fixes the x axis (0: up to the last point).
    void setPoints(const QList<QPointF>& points, int totalSteps = 0);
    const QList<QPointF>& points() const { return m_points; }
    // The exponential moving average drawn over the raw curve, one value per point.
    QList<QPointF> smoothed() const;
    // The running mean's decay: 0.9 weighs about the last ten steps.
    static constexpr double kSmoothing = 0.9;

    QSize sizeHint() const override { return {360, 160}; }
    QSize minimumSizeHint() const override { return {200, 100}; }

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    QList<QPointF> m_points;
    int m_totalSteps = 0;
};

}  // namespace easel::ui
