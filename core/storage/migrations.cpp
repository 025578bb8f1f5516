#include "storage/migrations.h"

#include <array>
#include <cstdint>
#include <string_view>

namespace easel::storage {
namespace {

// Append only: never edit a migration that has shipped.
constexpr std::array<std::string_view, 6> kMigrations{
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
)sql",
    // 3: leases of running jobs (which worker runs it, until when it is presumed alive) and cancel
    // requests for a job that another process runs
    R"sql(
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at INTEGER;
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
)sql",
    // Roles: a job names its model so that a worker claims only what it has loaded; workers say which
    // models they have (and that they are alive) so that an API-only server validates requests.
    R"sql(
ALTER TABLE jobs ADD COLUMN model_id TEXT;
CREATE TABLE workers (
    worker_id  TEXT PRIMARY KEY,
    seen_at    INTEGER NOT NULL,
    models     TEXT NOT NULL             -- JSON: {"default": id or null, "models": [descriptions]}
);
)sql",
    // 5: what a running job has done so far, written by the server that runs it for the others (several
    // servers), and each worker's recent seconds per image, for the ETAs an API-only server gives
    R"sql(
CREATE TABLE job_progress (
    job_id      INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,        -- the run that wrote it (jobs.attempts at its claim)
    step        INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    sample      INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    preview     BLOB,                    -- PNG of the running sample, if the model makes one
    updated_at  INTEGER NOT NULL
);
ALTER TABLE workers ADD COLUMN seconds_per_image REAL;
)sql",
    // 6: models loaded through the API on one server, applied by every generating server (each installs
    // into its own models dir), and each one's state of that install; rate-limit windows shared by the
    // servers; the server a training must run on
    R"sql(
CREATE TABLE model_installs (
    model_id    TEXT PRIMARY KEY,
    source      TEXT NOT NULL,           -- JSON: where it comes from (url, hf_id or path), its category
    owner_id    INTEGER NOT NULL DEFAULT 0,  -- 0: an admin's; else the account's own LoRA or embedding
    version     INTEGER NOT NULL,        -- +1 at every load of that id: a re-load installs again
    removed     INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE model_install_states (
    model_id    TEXT NOT NULL,
    worker_id   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    state       TEXT NOT NULL,           -- downloading, loading, ready, failed
    bytes_done  INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (model_id, worker_id)
);
-- request counts per rate-limit window (an account's API key, a login e-mail or IP), shared by the servers
CREATE TABLE rate_windows (
    rate_key     TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    used         INTEGER NOT NULL
);
-- the server that must run a job (NULL: any): a training's inputs and checkpoints are in its data dir
ALTER TABLE jobs ADD COLUMN home TEXT;
)sql"};

// The same migrations for PostgreSQL, one for one: 64-bit integers where SQLite's INTEGER is 64-bit,
// identity columns for AUTOINCREMENT (never reused either), bytea for BLOB, a unique index on
// lower(email) for SQLite's COLLATE NOCASE.
constexpr std::array<std::string_view, 6> kPostgresMigrations{
    R"sql(
CREATE TABLE users (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    plan            TEXT NOT NULL,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    api_key_hash    BYTEA NOT NULL UNIQUE,
    api_key_sealed  BYTEA NOT NULL,
    images_used     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    last_active_at  BIGINT NOT NULL,
    deleting        INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE TABLE sessions (
    token_hash  BYTEA PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE usage (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    request_id  BIGINT,
    kind        TEXT NOT NULL,
    images      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX usage_user ON usage(user_id, created_at);
CREATE TABLE jobs (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    images       INTEGER NOT NULL,
    request      TEXT NOT NULL,
    meta         TEXT,
    error        TEXT,
    track_id     TEXT,
    webhook      TEXT,
    temp         INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    generation_seconds DOUBLE PRECISION
);
CREATE INDEX jobs_queue ON jobs(status, priority DESC, id);
CREATE INDEX jobs_user ON jobs(user_id, id);
CREATE UNIQUE INDEX jobs_idempotency ON jobs(user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE images (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    job_id      BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    token       TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    UNIQUE (job_id, idx)
);
CREATE INDEX images_expiry ON images(expires_at);
CREATE TABLE uploads (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token       TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX uploads_expiry ON uploads(expires_at);
)sql",
    R"sql(
ALTER TABLE images ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
)sql",
    R"sql(
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
)sql",
    R"sql(
ALTER TABLE jobs ADD COLUMN model_id TEXT;
CREATE TABLE workers (
    worker_id  TEXT PRIMARY KEY,
    seen_at    BIGINT NOT NULL,
    models     TEXT NOT NULL
);
)sql",
    R"sql(
CREATE TABLE job_progress (
    job_id      BIGINT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    sample      INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    preview     BYTEA,
    updated_at  BIGINT NOT NULL
);
ALTER TABLE workers ADD COLUMN seconds_per_image DOUBLE PRECISION;
)sql",
    R"sql(
CREATE TABLE model_installs (
    model_id    TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    owner_id    BIGINT NOT NULL DEFAULT 0,
    version     BIGINT NOT NULL,
    removed     INTEGER NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL
);
CREATE TABLE model_install_states (
    model_id    TEXT NOT NULL,
    worker_id   TEXT NOT NULL,
    version     BIGINT NOT NULL,
    state       TEXT NOT NULL,
    bytes_done  BIGINT NOT NULL DEFAULT 0,
    bytes_total BIGINT NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (model_id, worker_id)
);
CREATE TABLE rate_windows (
    rate_key     TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    used         INTEGER NOT NULL
);
ALTER TABLE jobs ADD COLUMN home TEXT;
)sql"};
static_assert(kPostgresMigrations.size() == kMigrations.size(), "every migration in both dialects");

// Any fixed number: the advisory lock that keeps two servers starting at once from migrating together.
constexpr std::int64_t kMigrationLock = 0x6561'7365'6c00;

}  // namespace

int latestSchemaVersion() { return static_cast<int>(kMigrations.size()); }

void migrate(const Database& db) {
    const auto l = db.lock();
    const bool postgres = db.dialect() == Dialect::PostgreSQL;
    const auto& steps = postgres ? kPostgresMigrations : kMigrations;
    for (;;) {
        bool done = false;
        db.transaction([&] {
            // SQLite's BEGIN IMMEDIATE already keeps other writers out; PostgreSQL takes a lock for it.
            if (postgres) db.statement("SELECT pg_advisory_xact_lock(?)").bindAll(kMigrationLock).run();
            const int current = db.schemaVersion();
            if (current > latestSchemaVersion()) {
                throw DatabaseError("the database has schema version " + std::to_string(current) +
                                    ", newer than this easel-server understands (" +
                                    std::to_string(latestSchemaVersion()) + ")");
            }
            if (current == latestSchemaVersion()) {
                done = true;
                return;
            }
            db.exec(steps[static_cast<std::size_t>(current)]);
            db.setSchemaVersion(current + 1);
        });
        if (done) return;
    }
}

}  // namespace easel::storage
