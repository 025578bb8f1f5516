#pragma once
// Versioned schema migrations, recorded in PRAGMA user_version (SQLite) or the easel_schema_version
// table (PostgreSQL), each written in both dialects. Each migration runs once, in its own
// transaction, in order; a database newer than this binary is refused rather than guessed at.

#include "storage/database.h"

namespace easel::storage {

// The schema version this binary writes.
int latestSchemaVersion();

// Brings the database up to latestSchemaVersion(). Throws DatabaseError for a newer database.
void migrate(const Database& db);

}  // namespace easel::storage
