#!/usr/bin/env bash
# OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU: the program says so, restarts once without it, and runs
# normally; EASEL_KEEP_OPENBLAS_CORETYPE=1 keeps it; on a CPU without AVX-512 nothing changes.
set -euo pipefail
server=$1
out=$(OPENBLAS_CORETYPE=Haswell "$server" --help 2>&1)
usages=$(grep -c '^Usage: easel-server' <<<"$out" || true)
[ "$usages" = 1 ] || { echo "expected one usage text, got $usages:"; echo "$out"; exit 1; }
if grep -q avx512f /proc/cpuinfo; then
  grep -q 'OPENBLAS_CORETYPE=Haswell keeps OpenBLAS off' <<<"$out" || { echo "no restart notice:"; echo "$out"; exit 1; }
else
  ! grep -q 'restarting' <<<"$out" || { echo "restarted on a CPU without AVX-512"; exit 1; }
fi
kept=$(OPENBLAS_CORETYPE=Haswell EASEL_KEEP_OPENBLAS_CORETYPE=1 "$server" --help 2>&1)
! grep -q 'restarting' <<<"$kept" || { echo "EASEL_KEEP_OPENBLAS_CORETYPE=1 was ignored"; exit 1; }
plain=$(OPENBLAS_CORETYPE=SkylakeX "$server" --help 2>&1)
! grep -q 'restarting' <<<"$plain" || { echo "restarted for an AVX-512 core type"; exit 1; }
echo "ok"
