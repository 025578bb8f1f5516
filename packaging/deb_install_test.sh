#!/usr/bin/env bash
# The Debian package as an operator gets it: built by CPack from this build tree, checked by lintian,
# unpacked into a throw-away root, and its service command (as the unit runs it, with the shipped
# config) started from that root until /health answers with the built-in model.
#   deb_install_test.sh <build dir>
# Talks to 127.0.0.1 only.
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/easel-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT
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
[ -z "$EASEL_OPTIONS" ] || fail "the default config sets options: $EASEL_OPTIONS"
bash "$(dirname "$0")/../tests/clients/with_easel_server.sh" "$root/usr/bin/easel-server" python3 -c '
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/health", timeout=10) as r:
    health = json.loads(r.read())
    request_id = r.headers.get("X-Request-Id", "")
print("/health:", health, "X-Request-Id:", request_id)
sys.exit(0 if health["status"] == "ok" and health["model"] == "easel-shapes-64" and request_id else 1)' ||
  fail "the packaged easel-server did not answer /health with the built-in model"
echo "ok"
