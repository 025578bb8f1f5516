#pragma once
#include <string>

#include "app/app_args.h"

namespace easel::app {

// `easel-server admin create-user|set-plan|list-users|delete-user ...`: works on the data dir directly
// (SQLite WAL), also while the server runs. Prints JSON. Returns the exit code.
// `args` are the arguments after the verb.
int runAdmin(const std::string& verb, const ArgList& args);

}  // namespace easel::app
