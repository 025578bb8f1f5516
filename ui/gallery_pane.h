#pragma once
// The account's history from the server: thumbnails newest first, a page at a time, with each
// image's parameters and the actions on it (open large, save PNG, copy, reuse, delete).

#include <QHash>
#include <QList>
#include <QWidget>

#include "ui/api_types.h"
#include "ui/generation_params.h"

class QLabel;
class QListWidget;
class QPushButton;

namespace easel::ui {

class ApiClient;
class DialogPresenter;

class GalleryPane : public QWidget {
    Q_OBJECT
public:
    GalleryPane(ApiClient* client, DialogPresenter* dialogs, QWidget* parent = nullptr);
    void setPageSize(int size) { m_pageSize = size; }

    // Reloads the current page (the first after a new generation).
    void refresh();
    void showFirstPage();
    int total() const { return m_total; }
    int shownImages() const;

    // The actions, on the selected image; public so tests and menus share them.
    void selectImage(int row);
    bool saveSelected(const QString& path);
    void copySelectedImage();
    void copySelectedSeed();
    void useSelectedSettings();
    void useSelectedAsInit();
    void deleteSelected();
    void openSelected();

signals:
    void useSettingsRequested(const easel::ui::GenerationParams& params);
    void useAsInitRequested(const QImage& image);
    void pageLoaded();

private:
    struct Entry {
        HistoryItem item;
        QString url;
    };
    void load(int offset);
    void showPage(const HistoryPage& page);
    void updateDetails();
    const Entry* selected() const;
    QImage selectedImage() const;

    ApiClient* m_client;
    DialogPresenter* m_dialogs;
    QListWidget* m_list;
    QLabel* m_details;
    QLabel* m_pageLabel;
    QPushButton* m_previous;
    QPushButton* m_next;
    QList<QPushButton*> m_actions;
    QList<Entry> m_entries;
    QHash<QString, QByteArray> m_bytes;  // image URL -> PNG as served (with its parameters chunk)
    int m_pageSize = 20;
    int m_offset = 0;
    int m_total = 0;
    int m_pageSerial = 0;  // thumbnails that arrive after the page changed are dropped
};

}  // namespace easel::ui
