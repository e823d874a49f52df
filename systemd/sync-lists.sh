#!/usr/bin/env bash
# Brings the admin's blocklist folder up to date with the shipped lists, for install.sh and
# the Debian package's postinst. One line per change on stdout.
#
#   sync-lists.sh SHIPPED_DIR LISTS_DIR OLD_MANIFEST NEW_MANIFEST SYNTAX_DOC
#
# SHIPPED_DIR holds the lists as released (*.txt enabled, available/*.txt disabled); LISTS_DIR
# is /etc/sinkhole/blocklists. The manifest holds the checksum of every list shipped last
# time (OLD_MANIFEST, /dev/null on a first install; NEW_MANIFEST is written), so: a list the
# admin never had is installed where the release has it (enabled or available/); one the
# admin removed stays removed; one still as shipped is updated wherever it is (so enabled or
# disabled stays so); an edited one is kept and the new version written beside it as .new;
# local.txt and local.allow.txt are created once and never touched again.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: sync-lists.sh SHIPPED_DIR LISTS_DIR OLD_MANIFEST NEW_MANIFEST SYNTAX_DOC" >&2; exit 2; }
shipped_dir="$1"; lists="$2"; old_manifest="$3"; manifest="$4"; syntax_doc="$5"
[ -f "$old_manifest" ] || old_manifest=/dev/null
say() { printf '%s\n' "$*"; }
mkdir -p "$lists/available"
: > "$manifest"
shipped_sum() { awk -v n="$1" '$2 == n { print $1; exit }' "$old_manifest"; }
for shipped in "$shipped_dir"/*.txt "$shipped_dir"/available/*.txt; do
  [ -f "$shipped" ] || continue
  name="$(basename "$shipped")"
  case "$name" in local.txt|local.allow.txt) continue ;; esac
  case "$shipped" in */available/*) home="$lists/available" ;; *) home="$lists" ;; esac
  if [ -f "$lists/$name" ]; then installed="$lists/$name"
  elif [ -f "$lists/available/$name" ]; then installed="$lists/available/$name"
  else installed=""
  fi
  sum="$(sha256sum < "$shipped" | cut -d' ' -f1)"
  was="$(shipped_sum "$name")"
  if [ -z "$installed" ]; then
    if [ -n "$was" ]; then
      say "left out $name: you removed it"
    else
      install -m 644 "$shipped" "$home/$name"
      say "installed blocklist $home/$name"
    fi
  else
    current="$(sha256sum < "$installed" | cut -d' ' -f1)"
    if [ "$current" = "$sum" ]; then
      rm -f "$installed.new"
    elif [ -n "$was" ] && [ "$current" = "$was" ]; then
      install -m 644 "$shipped" "$installed"
      say "updated $installed"
    elif [ "$sum" != "$was" ]; then
      install -m 644 "$shipped" "$installed.new"
      say "kept your edited $installed; the new shipped version is $installed.new: move your lines to local.txt, then mv $name.new $name"
    else
      say "kept your edited $installed (put your own lines in local.txt, so that updates reach this list)"
    fi
  fi
  printf '%s  %s\n' "$sum" "$name" >> "$manifest"
done
# Lists shipped before and no longer: removed if untouched, kept if edited.
while read -r was name; do
  awk -v n="$name" '$2 == n { found = 1 } END { exit !found }' "$manifest" && continue
  for installed in "$lists/$name" "$lists/available/$name"; do
    [ -f "$installed" ] || continue
    if [ "$(sha256sum < "$installed" | cut -d' ' -f1)" = "$was" ]; then
      rm -f "$installed"; say "removed $installed: no longer shipped"
    else
      say "kept your edited $installed, which is no longer shipped"
    fi
  done
done < "$old_manifest"
chmod 644 "$manifest"
for own in local.txt local.allow.txt; do
  [ -e "$lists/$own" ] || [ -e "$lists/available/$own" ] && continue
  if [ "$own" = local.txt ]; then what="Local additions: names to block"; else what="Local exceptions: names never blocked"; fi
  printf '# %s. Upgrades never change this file.\n# One name per line; the syntax is in %s.\n' "$what" "$syntax_doc" > "$lists/$own"
  chmod 644 "$lists/$own"
done
