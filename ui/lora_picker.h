#pragma once
// The LoRAs of one request, several at once, each with its strength (a slider and a spin box over the
// server's -4..4), and the embeddings whose trigger words go into the prompt. It offers what the
// server has installed; a LoRA or embedding made for another family than the selected model's is
// listed disabled, with the reason as its tooltip, since the server would refuse it.

#include <QList>
#include <QWidget>

#include "ui/api_types.h"
#include "ui/generation_params.h"

class QDoubleSpinBox;
class QLabel;
class QMenu;
class QPushButton;
class QSlider;
class QVBoxLayout;

namespace easel::ui {

class LoraPicker : public QWidget {
    Q_OBJECT
public:
    explicit LoraPicker(QWidget* parent = nullptr);

    // The server's LoRAs and embeddings (the model list's entries of those categories).
    void setAdapters(const QList<ModelInfo>& loras, const QList<ModelInfo>& embeddings);
    // The selected model's family ("sd1"); empty when unknown, which lets everything through.
    void setModelFamily(const QString& family);

    QList<LoraChoice> loras() const;
    // Replaces the rows; ids this server does not have are kept as rows marked "not on this server".
    void setLoras(const QList<LoraChoice>& loras);
    // Adds a row, or sets the strength of the row already there for `id`.
    void addLora(const QString& id, double strength = 1.0);
    void removeLora(const QString& id);
    // The rows' ids that are no LoRA on this server, once its list is known.
    QStringList unknownLoras() const;
    // The rows' ids of LoRAs made for another family than the selected model's.
    QStringList misfitLoras() const;
    // The trigger words (ids) of the installed embeddings that fit the selected model. One made for
    // another family is not sent even where its word is in the prompt: there it is an ordinary word.
    QStringList embeddingTriggers() const;

    QMenu* loraMenu() const { return m_loraMenu; }
    QMenu* embeddingMenu() const { return m_embeddingMenu; }

signals:
    void changed();
    // An embedding was picked from the menu: its trigger word goes into the prompt.
    void embeddingChosen(const QString& trigger);

private:
    struct Row {
        QString id;
        QWidget* widget;
        QLabel* name;
        QSlider* slider;
        QDoubleSpinBox* strength;
    };

    const ModelInfo* findLora(const QString& id) const;
    // Why an adapter cannot be used with the selected model; empty when it can.
    QString misfit(const ModelInfo& adapter) const;
    void markRow(const Row& row) const;
    void refresh();

    QVBoxLayout* m_rows;
    QLabel* m_hint;
    QPushButton* m_add;
    QPushButton* m_insertEmbedding;
    QMenu* m_loraMenu;
    QMenu* m_embeddingMenu;
    QList<Row> m_rowList;
    QList<ModelInfo> m_loras;
    QList<ModelInfo> m_embeddings;
    QString m_family;
    bool m_listed = false;  // whether the server's list has arrived
};

}  // namespace easel::ui
