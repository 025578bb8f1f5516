#include "main_window.h"

#include <QStatusBar>
#include <QVBoxLayout>

namespace easel::ui {

MainWindow::MainWindow(ApiClient* client, QWidget* parent)
    : QMainWindow(parent), m_client(client), m_status(new QLabel(this)) {
    setWindowTitle(QStringLiteral("Easel"));
    resize(960, 640);
    auto* central = new QWidget(this);
    auto* layout = new QVBoxLayout(central);
    auto* title = new QLabel(QStringLiteral("<h2>Easel</h2><p>Self-hosted Stable Diffusion.</p>"), central);
    layout->addWidget(title);
    layout->addStretch();
    setCentralWidget(central);
    statusBar()->addWidget(m_status);
    m_status->setText(tr("Connecting to %1 …").arg(client->baseUrl().toString()));
    connect(client, &ApiClient::healthChecked, this, [this](bool ok, const QString& detail) {
        m_status->setText(ok ? tr("Backend %1 ready: %2").arg(m_client->baseUrl().toString(), detail)
                             : tr("Backend unreachable: %1").arg(detail));
    });
    client->checkHealth();
}

}  // namespace easel::ui
