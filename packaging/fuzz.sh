#!/usr/bin/env bash
# Builds the libFuzzer targets (preset fuzz: clang, ASan+UBSan, no libtorch) and runs each for a
# number of inputs, starting from small seed corpora made here.
#   bash packaging/fuzz.sh [RUNS]      RUNS per target, default 1000000
# Prints one line per target: inputs run, seconds, and whether it found anything (a crash writes
# build/fuzz/crash-* and stops that target with a non-zero exit).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${1:-1000000}
bash packaging/setup-deps.sh >/dev/null
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    { echo "[easel fuzz] installing $p"; apt-get install -y -qq --no-install-recommends "$p" >/dev/null; }
done
[ -f build/fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

corpus=build/fuzz/corpus
mkdir -p "$corpus"/{http_request_fuzz,generation_request_fuzz,image_decode_fuzz,safetensors_header_fuzz,multipart_form_fuzz}
printf 'POST /api/v6/images/text2img HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"key":"k","prompt":"a cat","seed":[1]}' \
  >"$corpus/http_request_fuzz/seed1"
printf 'GET /images/abc.png?x=%%41 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n' >"$corpus/http_request_fuzz/seed2"
printf '{"prompt":"a (red:1.2) circle","width":"64","height":64,"samples":2,"seed":-1,"scheduler":"Euler a","init_image":"data:image/png;base64,iVBORw0KGgo=","mask_image":"http://example.com/m.png","strength":"0.5","base64":"yes"}' \
  >"$corpus/generation_request_fuzz/seed1"
cp resources/icons/easel.svg "$corpus/image_decode_fuzz/seed-svg"
printf 'multipart/form-data; boundary="xY z"\n--xY z\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--xY\r\n--xY z\r\nContent-Disposition: form-data; name=prompt\r\n\r\na cat\r\n--xY z--\r\n' \
  >"$corpus/multipart_form_fuzz/seed1"
find tests/data/reference -maxdepth 1 -name '*_vectors.safetensors' -size -100k -exec cp {} "$corpus/safetensors_header_fuzz/" \;
python3 - "$corpus/image_decode_fuzz" <<'PY'
import base64, struct, sys, zlib
def png(w, h):
    raw = b"".join(b"\x00" + bytes([(x * 7 + y * 3) % 256 for x in range(w * 3)]) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"tEXt", b"parameters\x00a cat\nSteps: 20") + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1] + "/seed-png", "wb").write(png(8, 6))
open(sys.argv[1] + "/seed-b64", "wb").write(b"data:image/png;base64," + base64.b64encode(png(4, 4)))
PY

# Inputs that once crashed a target stay in its corpus (tests/fuzz/regressions/<target without _fuzz>_*).
for target in http_request_fuzz generation_request_fuzz image_decode_fuzz safetensors_header_fuzz multipart_form_fuzz; do
  find tests/fuzz/regressions -name "${target%_fuzz}_*" -exec cp {} "$corpus/$target/" \; 2>/dev/null || true
done

status=0
targets=${EASEL_FUZZ_TARGETS:-"http_request_fuzz generation_request_fuzz image_decode_fuzz safetensors_header_fuzz multipart_form_fuzz"}
for target in $targets; do
  start=$(date +%s)
  log=build/fuzz/$target.log
  if (cd build/fuzz && "./tests/fuzz/$target" -runs="$runs" -max_len=65536 -rss_limit_mb=4096 -timeout=20 \
      -print_final_stats=1 "corpus/$target" >"$target.log" 2>&1); then result=clean; else result="FOUND (see $log)"; status=1; fi
  done_runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "[easel fuzz] $target: $done_runs inputs in $(( $(date +%s) - start )) s: $result"
done
exit $status
