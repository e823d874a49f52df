#!/usr/bin/env bash
# Removes what install.sh installed (see usage below).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: uninstall.sh [OPTION]...
Stop and remove the sinkhole service, the sinkhole command and the app (/opt/sinkhole).
Keeps /etc/sinkhole (your config and blocklists) and /var/lib/sinkhole unless --purge.

  sudo ./systemd/uninstall.sh [--purge]
  ./systemd/uninstall.sh --prefix DIR [--purge]

Options:
  --purge             also remove /etc/sinkhole and /var/lib/sinkhole
  --prefix DIR        remove an install made with install.sh --prefix DIR
  --bindir DIR        where the sinkhole command is (/usr/local/bin)
  --unitdir DIR       where sinkhole.service is (/etc/systemd/system)
  --mandir DIR        where the manual pages are (/usr/local/share/man)
  --sysusersdir DIR   where the sysusers.d entry is (/usr/local/lib/sysusers.d)
  -h, --help          show this text

The "sinkhole" system user stays (removing a user whose id may still own files is unsafe);
remove it with "userdel sinkhole" if you wish.
EOF
}

prefix="${DESTDIR:-}"
purge=no
bindir=/usr/local/bin
unitdir=/etc/systemd/system
mandir=/usr/local/share/man
sysusersdir=/usr/local/lib/sysusers.d
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --purge) purge=yes; shift ;;
    --bindir) bindir="${2:?--bindir needs a folder}"; shift 2 ;;
    --unitdir) unitdir="${2:?--unitdir needs a folder}"; shift 2 ;;
    --mandir) mandir="${2:?--mandir needs a folder}"; shift 2 ;;
    --sysusersdir) sysusersdir="${2:?--sysusersdir needs a folder}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$prefix" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run as root (sudo $0), or use --prefix DIR" >&2; exit 1; }
  systemctl disable --now sinkhole.service >/dev/null 2>&1 || true
fi
rm -f "$prefix$unitdir/sinkhole.service" "$prefix$bindir/sinkhole" "$prefix$sysusersdir/sinkhole.conf" \
  "$prefix$mandir/man8/sinkhole.8" "$prefix$mandir/man5/sinkhole.conf.5"
rm -rf "$prefix/opt/sinkhole" "$prefix/opt/sinkhole.prev" "$prefix/opt/sinkhole.failed" "$prefix/opt/sinkhole.new"
if [ -z "$prefix" ]; then systemctl daemon-reload || true; fi
if [ "$purge" = yes ]; then
  rm -rf "$prefix/etc/sinkhole" "$prefix/var/lib/sinkhole" "$prefix/var/lib/private/sinkhole"
  echo "uninstall.sh: removed sinkhole, ${prefix}/etc/sinkhole and ${prefix}/var/lib/sinkhole"
else
  echo "uninstall.sh: removed sinkhole; kept ${prefix}/etc/sinkhole (your config and blocklists) and ${prefix}/var/lib/sinkhole; --purge removes them"
fi
