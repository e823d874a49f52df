#!/usr/bin/env bash
# Removes what install.sh installed: the service, the command and the app. Keeps
# /etc/sinkhole (your config and blocklists) unless --purge is given.
#
#   sudo ./systemd/uninstall.sh [--purge]
#   ./systemd/uninstall.sh --prefix DIR [--purge]
set -euo pipefail
prefix="${DESTDIR:-}"
purge=no
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --purge) purge=yes; shift ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$prefix" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run as root (sudo $0)" >&2; exit 1; }
  systemctl disable --now sinkhole.service >/dev/null 2>&1 || true
fi
rm -f "$prefix/etc/systemd/system/sinkhole.service" "$prefix/usr/local/bin/sinkhole"
rm -rf "$prefix/opt/sinkhole"
[ -z "$prefix" ] && systemctl daemon-reload || true
if [ "$purge" = yes ]; then
  rm -rf "$prefix/etc/sinkhole"
  echo "uninstall.sh: removed sinkhole and /etc/sinkhole"
else
  echo "uninstall.sh: removed sinkhole; kept ${prefix}/etc/sinkhole (your config and blocklists; --purge removes it)"
fi
