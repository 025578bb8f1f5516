#pragma once

#include <QLabel>
#include <QMainWindow>

#include "api_client.h"

namespace easel::ui {

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(ApiClient* client, QWidget* parent = nullptr);

private:
    ApiClient* m_client;
    QLabel* m_status;
};

}  // namespace easel::ui
