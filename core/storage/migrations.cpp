#include "storage/migrations.h"

#include <array>
#include <string_view>

namespace easel::storage {
namespace {

// Append only: never edit a migration that has shipped.
constexpr std::array<std::string_view, 2> kMigrations{
    R"sql(
CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids derive secrets and links
    email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash   TEXT NOT NULL,
    plan            TEXT NOT NULL,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    api_key_hash    BLOB NOT NULL UNIQUE,      -- keyed hash of the key: the lookup
    api_key_sealed  BLOB NOT NULL,             -- the key encrypted with the server key: "view key"
    images_used     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_active_at  INTEGER NOT NULL,
    deleting        INTEGER NOT NULL DEFAULT 0  -- a purge started; the sweeper finishes it after a crash
);
CREATE TABLE sessions (
    token_hash  BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE usage (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    request_id  INTEGER,
    kind        TEXT NOT NULL,
    images      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX usage_user ON usage(user_id, created_at);
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,               -- text2img | img2img | inpaint
    status       TEXT NOT NULL,               -- queued | running | succeeded | failed | cancelled
    priority     INTEGER NOT NULL,
    images       INTEGER NOT NULL,            -- charged against the quota
    request      TEXT NOT NULL,               -- the validated parameters (JSON)
    meta         TEXT,                        -- the parameters actually used, incl. the seed (JSON)
    error        TEXT,
    track_id     TEXT,
    webhook      TEXT,
    temp         INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,                     -- a retried POST finds its first job here
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    generation_seconds REAL
);
CREATE INDEX jobs_queue ON jobs(status, priority DESC, id);
CREATE INDEX jobs_user ON jobs(user_id, id);
CREATE UNIQUE INDEX jobs_idempotency ON jobs(user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE images (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    token       TEXT NOT NULL UNIQUE,         -- unguessable file name in URLs
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    UNIQUE (job_id, idx)
);
CREATE INDEX images_expiry ON images(expires_at);
CREATE TABLE uploads (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token       TEXT NOT NULL UNIQUE,       -- blob name; also in URLs of uploaded init images
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX uploads_expiry ON uploads(expires_at);
)sql",
    // 2: stored bytes per image and upload, for the plans' storage caps
    R"sql(
ALTER TABLE images ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
)sql"};

}  // namespace

int latestSchemaVersion() { return static_cast<int>(kMigrations.size()); }

void migrate(const Database& db) {
    const auto l = db.lock();
    const int current = db.schemaVersion();
    if (current > latestSchemaVersion()) {
        throw DatabaseError("the database has schema version " + std::to_string(current) + ", newer than this " +
                            "easel-server understands (" + std::to_string(latestSchemaVersion()) + ")");
    }
    for (int v = current; v < latestSchemaVersion(); ++v) {
        db.transaction([&] {
            db.exec(kMigrations[static_cast<std::size_t>(v)]);
            db.setSchemaVersion(v + 1);
        });
    }
}

}  // namespace easel::storage
