#pragma once
// The Train tab: fine-tunes a model on a handful of images of one subject, DreamBooth (a new
// checkpoint) or LoRA (an adapter), through the server's /api/v3 training routes. The user picks the
// base model, adds the images, names the subject with a rare token in the instance prompt, and
// follows the run here: stage, step, time left and the loss curve. When the model is ready the pane
// says so and emits modelReady, on which the window reloads the model list, so the result shows up in
// the model picker (DreamBooth) or the LoRA picker (LoRA) of the generation tabs.

#include <QList>
#include <QWidget>

#include "ui/api_types.h"
#include "ui/training_types.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace easel::ui {

class ApiClient;
class DialogPresenter;
class LossPlot;
class TrainingJob;
struct ApiError;

class TrainPane : public QWidget {
    Q_OBJECT
public:
    // Neither `client` nor `dialogs` is owned.
    TrainPane(ApiClient* client, DialogPresenter* dialogs, QWidget* parent = nullptr);

    static constexpr int kStepsPerImage = 2;  // the default step count, per image
    static constexpr int kMaxSteps = 2000;

    // The server's model list; the checkpoints become the base models offered.
    void setModels(const QList<ModelInfo>& models);

    // Adds the images that load; says which did not. Returns how many were added.
    int addImageFiles(const QStringList& paths);
    void removeSelectedImages();
    // The images as the request sends them: data: URLs.
    QStringList imageDataURLs() const;

    // The request for the current settings (a random seed is drawn here when none is set).
    TrainingRequest request() const;
    // Empty when a training can start; otherwise what is missing, for the user.
    QString missingInput() const;

    void startTraining();
    // Follows the newest of the server's trainings that still runs (one started before the app was
    // restarted, or by another client with the same key), unless one is followed already.
    void resumeRunning();
    void cancelTraining();

    TrainingJob* job() const { return m_job; }
    LossPlot* lossPlot() const { return m_lossPlot; }

signals:
    // A training finished and its model or LoRA is installed on the server under `modelId`.
    void modelReady(easel::ui::TrainingMethod method, const QString& modelId);

protected:
    // Image files dropped anywhere on the pane are added like those from "Add images…".
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    QWidget* buildSettings();
    QWidget* buildProgress();
    void chooseImages();
    void imagesChanged();
    void methodChanged();
    void showStatus(const TrainingStatus& status);
    void onModelReady(const TrainingStatus& status);
    void onFailed(const ApiError& error);
    void updateControls();

    ApiClient* m_client;
    DialogPresenter* m_dialogs;
    TrainingJob* m_job;
    QComboBox* m_method = nullptr;
    QComboBox* m_baseModel = nullptr;
    QLineEdit* m_instancePrompt = nullptr;
    QLineEdit* m_classPrompt = nullptr;
    QLineEdit* m_negativePrompt = nullptr;
    QSpinBox* m_steps = nullptr;
    QSpinBox* m_seed = nullptr;
    QListWidget* m_images = nullptr;
    QLabel* m_imageCount = nullptr;
    QPushButton* m_addImages = nullptr;
    QPushButton* m_removeImages = nullptr;
    QPushButton* m_start = nullptr;
    QPushButton* m_cancel = nullptr;
    QLabel* m_stage = nullptr;
    QProgressBar* m_progress = nullptr;
    QLabel* m_detail = nullptr;
    LossPlot* m_lossPlot = nullptr;
    bool m_stepsEdited = false;  // the user chose a step count: it no longer follows the image count
    bool m_settingSteps = false;
};

}  // namespace easel::ui
