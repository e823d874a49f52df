#!/usr/bin/env bash
# Builds a Debian package of sinkhole with dpkg-deb, offline (see usage below).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: package-deb.sh [--out DIR]
Build sinkhole_VERSION_ARCH.deb in DIR (default: the top of the checkout) with dpkg-deb, from
the built tree (dist/, node_modules/) and git's view of blocklists/. No network is used.
ARCH is "all", or this machine's architecture when the optional native addon is built.

The package holds /opt/sinkhole (the app), /usr/bin/sinkhole, /lib/systemd/system/sinkhole.service,
/usr/lib/sysusers.d/sinkhole.conf and the config /etc/sinkhole/sinkhole.conf (a conffile).
Its postinst creates the "sinkhole" user, makes the config 0640 root:sinkhole, brings
/etc/sinkhole/blocklists up to date the way install.sh does (edits, enable/disable state and
local.txt kept) and restarts the service. It honours DPKG_ROOT (dpkg --root with
--force-script-chrootless).
EOF
}

out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "package-deb.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { printf 'package-deb.sh: %s\n' "$*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed (apt-get install dpkg)"

src="$(cd "$(dirname "$0")/.." && pwd)"
out="$(cd "${out:-$src}" && pwd)"
version="$(sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' "$src/package.json" | head -n1)"
[ -n "$version" ] || die "no version in $src/package.json"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"

# The files, staged by install.sh at Debian's places.
if ! DESTDIR="$root" "$src/systemd/install.sh" --bindir /usr/bin --unitdir /lib/systemd/system \
    --mandir /usr/share/man --sysusersdir /usr/lib/sysusers.d > "$work/install.log" 2>&1; then
  cat "$work/install.log" >&2
  die "install.sh could not stage the files"
fi
# /etc/sinkhole/blocklists is the admin's: dpkg would overwrite edits and undo enable/disable
# moves if the lists were package files, so the postinst syncs them from /opt/sinkhole/blocklists.
rm -rf "$root/etc/sinkhole/blocklists" "$root/opt/sinkhole/blocklists.sha256"
install -D -m 755 "$src/systemd/sync-lists.sh" "$root/opt/sinkhole/lib/sync-lists.sh"

# JavaScript runs anywhere; the optional native addon (batched UDP), when built, only here.
if [ -n "$(find "$root/opt/sinkhole/node_modules" -name '*.node' -print -quit)" ]; then arch="$(dpkg --print-architecture)"; else arch=all; fi

mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<EOF
Package: sinkhole
Version: $version
Architecture: $arch
Maintainer: ${DEBFULLNAME:-sinkhole maintainers} <${DEBEMAIL:-sinkhole@localhost}>
Section: net
Priority: optional
Recommends: nodejs (>= 20), systemd
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Description: DNS sinkhole resolver for networks that block instant messengers
 Blocked names answer 127.0.0.1/::1, everything else is forwarded and cached.
 Blocklists are in /etc/sinkhole/blocklists; settings in /etc/sinkhole/sinkhole.conf.
 Needs Node.js 20 or newer in /usr/bin or /usr/local/bin.
EOF
echo /etc/sinkhole/sinkhole.conf > "$root/DEBIAN/conffiles"

cat > "$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
root="${DPKG_ROOT:-}"
if [ "$1" = configure ]; then
  if [ -n "$root" ]; then
    systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/sinkhole.conf" >/dev/null
  elif command -v systemd-sysusers >/dev/null; then
    systemd-sysusers /usr/lib/sysusers.d/sinkhole.conf
  elif ! getent group sinkhole >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/sinkhole --shell /usr/sbin/nologin sinkhole
  fi
  gid="$(awk -F: '$1 == "sinkhole" { print $3 }' "$root/etc/group")"
  chgrp "$gid" "$root/etc/sinkhole/sinkhole.conf"
  chmod 640 "$root/etc/sinkhole/sinkhole.conf"
  # What was shipped last time is remembered in /var/lib/sinkhole (kept on remove, gone on purge).
  mkdir -p "$root/var/lib/sinkhole"
  manifest="$root/var/lib/sinkhole/shipped-lists.sha256"
  old="$(mktemp)"
  [ -f "$manifest" ] && cp "$manifest" "$old"
  "$root/opt/sinkhole/lib/sync-lists.sh" "$root/opt/sinkhole/blocklists" "$root/etc/sinkhole/blocklists" "$old" "$manifest" \
    /opt/sinkhole/blocklists/README.md | sed 's/^/sinkhole: /'
  rm -f "$old"
  if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable sinkhole.service >/dev/null 2>&1 || true
    systemctl restart sinkhole.service || echo "sinkhole: the service did not start; see: journalctl -u sinkhole -n 50" >&2
  fi
fi
EOF
cat > "$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now sinkhole.service >/dev/null 2>&1 || true
fi
EOF
cat > "$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
root="${DPKG_ROOT:-}"
if [ "$1" = purge ]; then
  rm -rf "$root/etc/sinkhole" "$root/var/lib/sinkhole" "$root/var/lib/private/sinkhole"
fi
if [ -z "$root" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
EOF
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

deb="$out/sinkhole_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "package-deb.sh: built $deb"
