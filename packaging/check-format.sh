#!/usr/bin/env bash
# Fails (and lists the files) when any of our C++ sources differs from .clang-format.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t files < <(find app core server ui tests -name '*.h' -o -name '*.cpp' | sort)
bad=()
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
if [ ${#bad[@]} -ne 0 ]; then
  echo "clang-format differs in ${#bad[@]} file(s); run: clang-format -i ${bad[*]}"
  exit 1
fi
echo "format ok: ${#files[@]} files"
