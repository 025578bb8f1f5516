#pragma once
// The playground window: text-to-image, image-to-image and inpaint panes, fine-tuning (Train), the
// gallery and the account dashboard in tabs, the request queue below. It only talks to the server given by the
// ApiClient (bundled or remote), with whatever credentials that client holds.

#include <QLabel>
#include <QMainWindow>

#include "ui/api_client.h"
#include "ui/api_types.h"

class QTabWidget;

namespace easel::ui {

class AccountPane;
class DialogPresenter;
class GalleryPane;
class GenerationPane;
class GenerationQueue;
class ImageToImagePane;
class InpaintPane;
class QueuePanel;
class TextToImagePane;
class TrainPane;
struct QueuedJob;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    // `dialogs` shows every message and question (tests pass a recorder). Neither is owned.
    MainWindow(ApiClient* client, DialogPresenter* dialogs, QWidget* parent = nullptr);

    TextToImagePane* textToImagePane() const { return m_text2img; }
    ImageToImagePane* imageToImagePane() const { return m_img2img; }
    InpaintPane* inpaintPane() const { return m_inpaint; }
    TrainPane* trainPane() const { return m_train; }
    GalleryPane* gallery() const { return m_gallery; }
    AccountPane* accountPane() const { return m_account; }
    GenerationQueue* queue() const { return m_queue; }
    QTabWidget* tabs() const { return m_tabs; }

    // Loads models, gallery and account with the client's current credentials.
    void reloadFromServer();
    // The model list alone, into every pane (after a training, its model or LoRA appears there).
    void reloadModels();
    void generate(GenerationPane* pane);
    // The cURL command for the pane's settings; also copied to the clipboard by the button.
    QString curlFor(GenerationPane* pane) const;
    // Restores the parameters stored in a PNG (A1111 "parameters" chunk) into the current pane.
    bool openImageParameters(const QString& path);
    void signIn();
    void signOut();
    // Local mode: the bundled backend's address (the sign-in dialog does not remember it).
    void setBundledServer(const QUrl& url) { m_bundledServer = url; }

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void buildMenus();
    GenerationPane* paneFor(int kind) const;
    GenerationPane* currentGenerationPane() const;
    void onJobFinished(const QueuedJob& job);
    // The oldest running request's live preview goes to its pane's result area.
    void showLivePreview();
    void saveSettings() const;
    void restoreSettings();

    ApiClient* m_client;
    DialogPresenter* m_dialogs;
    GenerationQueue* m_queue;
    QTabWidget* m_tabs;
    TextToImagePane* m_text2img;
    ImageToImagePane* m_img2img;
    InpaintPane* m_inpaint;
    TrainPane* m_train;
    GalleryPane* m_gallery;
    AccountPane* m_account;
    QueuePanel* m_queuePanel;
    QLabel* m_status;
    QList<ModelInfo> m_models;
    QUrl m_bundledServer;
};

}  // namespace easel::ui
