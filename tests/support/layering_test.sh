#!/usr/bin/env bash
# The layer rule as the build enforces it (ARCHITECTURE.md): a target sees only the include roots of
# the layers it links, so an include that points upward does not compile; and every include in the
# sources is path-qualified.
#   layering_test.sh <c++ compiler> <build dir>/include <source dir>
set -euo pipefail
cxx=$1
roots=$2
src=$3

compiles() {  # compiles <include line> <target>...
  local line=$1
  shift
  local flags=()
  for t in "$@"; do flags+=("-I$roots/$t"); done
  # From an empty folder: a quoted include also searches the compiler's working directory.
  (cd "$scratch" && echo "$line" | "$cxx" -std=c++20 -fsyntax-only "${flags[@]}" -x c++ - 2>/dev/null)
}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

fail=0
# Positive controls: each layer compiles its own and lower headers, so the checks below can fail.
compiles '#include "storage/database.h"' easel_storage easel_common || { echo "FAIL: storage cannot include itself"; fail=1; }
compiles '#include "common/clock.h"' easel_storage easel_common || { echo "FAIL: storage cannot include common"; fail=1; }
compiles '#include "server/router.h"' easel_server || { echo "FAIL: server cannot include itself"; fail=1; }

# Upward or sideways includes, from the roots each layer really has.
while read -r layer header targets; do
  # shellcheck disable=SC2086
  if compiles "#include \"$header\"" $targets; then
    echo "FAIL: $layer can include $header"
    fail=1
  fi
done <<'LIST'
common storage/database.h easel_common
storage accounts/account_service.h easel_storage easel_common
storage inference/engine.h easel_storage easel_common
jobs service/platform.h easel_jobs easel_quota easel_storage easel_common
quota jobs/job_runner.h easel_quota easel_storage easel_common
inference storage/database.h easel_inference_formats easel_common
inference server/router.h easel_inference_formats easel_common
service server/router.h easel_service easel_jobs easel_accounts easel_quota easel_storage easel_common
server ui/main_window.h easel_server easel_service easel_models easel_net easel_jobs easel_accounts easel_quota easel_storage easel_common
server app/backend.h easel_server easel_service easel_models easel_net easel_jobs easel_accounts easel_quota easel_storage easel_common
ui server/router.h easel_ui easel_common
ui service/platform.h easel_ui easel_common
LIST

bare=$(cd "$src" && grep -rn '#include "' app server ui core | grep -v '#include "[a-z_0-9]*/' || true)
if [ -n "$bare" ]; then
  echo "FAIL: includes without their folder:"
  echo "$bare"
  fail=1
fi
[ $fail -eq 0 ] && echo "layering ok"
exit $fail
