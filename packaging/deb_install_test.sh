#!/usr/bin/env bash
# The Debian package as an operator gets it: built by CPack from this build tree, checked by lintian,
# unpacked into a throw-away root, and its service command (as the unit runs it, with the shipped
# config) started from that root until /health answers with the built-in model.
#   deb_install_test.sh <build dir>
# Talks to 127.0.0.1 only.
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/easel-deb-XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

(cd "$build" && cpack --config CPackConfig.cmake -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/out/easel_*_amd64.deb)
echo "package: $(basename "$deb") ($(du -h "$deb" | cut -f1))"

if command -v lintian >/dev/null 2>&1; then
  lintian --fail-on error,warning "$deb" 2>&1 | grep -v "running with root privileges" || true
  lintian --fail-on error,warning "$deb" >/dev/null 2>&1 || fail "lintian reports errors or warnings"
  echo "lintian: no errors or warnings"
else
  echo "lintian not installed: skipped"
fi

root="$work/root"
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$work/control"
for f in usr/bin/easel-server usr/bin/easel lib/systemd/system/easel-server.service etc/easel/easel-server.conf \
         usr/share/applications/easel.desktop usr/share/icons/hicolor/scalable/apps/easel.svg \
         usr/share/metainfo/io.github.easel_sd.Easel.metainfo.xml usr/share/easel/models/easel-shapes-64/model.json \
         usr/share/doc/easel/copyright usr/share/man/man1/easel-server.1.gz; do
  [ -e "$root/$f" ] || fail "the package lacks /$f"
done
grep -qx /etc/easel/easel-server.conf "$work/control/conffiles" || fail "the config file is not a conffile"
for script in postinst prerm postrm; do sh -n "$work/control/$script" || fail "$script does not parse"; done
grep -q '^Depends:.*libtorch' "$work/control/control" || fail "Depends lacks libtorch (shlibdeps)"

unit="$root/lib/systemd/system/easel-server.service"
for line in User=easel StateDirectory=easel ProtectSystem=strict NoNewPrivileges=true \
            'EnvironmentFile=-/etc/easel/easel-server.conf' 'WantedBy=multi-user.target'; do
  grep -qxF "$line" "$unit" || fail "the unit lacks $line"
done
if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate "$root/usr/share/applications/easel.desktop" || fail "desktop-file-validate"
fi
if command -v appstreamcli >/dev/null 2>&1; then
  appstreamcli validate --no-net "$root/usr/share/metainfo/io.github.easel_sd.Easel.metainfo.xml" >/dev/null ||
    fail "appstreamcli validate"
fi

# The unit's command, with the shipped settings, run from the unpacked root: only the port (free) and
# the data dir (StateDirectory, here a temp dir) differ.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ "${exec_start%% *}" = /usr/bin/easel-server ] || fail "ExecStart runs ${exec_start%% *}"
# shellcheck disable=SC1090
. "$root/etc/easel/easel-server.conf"
[ "$EASEL_LISTEN" = 127.0.0.1:7860 ] || fail "the default config listens on $EASEL_LISTEN, not loopback"
mkdir -p "$work/state"
# shellcheck disable=SC2086
"$root/usr/bin/easel-server" --listen 127.0.0.1:0 --data-dir "$work/state" $EASEL_OPTIONS >"$work/server.log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1200); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/server.log" | head -n1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log"; fail "the packaged easel-server did not start"; }
health=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
  "http://127.0.0.1:$port/health")
echo "/health: $health"
python3 -c 'import json, sys; h = json.loads(sys.argv[1]); sys.exit(0 if h["status"] == "ok" and h["model"] == "easel-shapes-64" else 1)' \
  "$health" || fail "/health did not report the built-in model"
grep -q '"event":"request"' "$work/server.log" || fail "no JSON access log line"
echo "ok"
