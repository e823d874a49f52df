#!/usr/bin/env bash
# Installs sinkhole as a systemd service; run it again to upgrade (see usage below).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install.sh [OPTION]...
Install sinkhole as a systemd service, or upgrade it: run it again from a newer checkout.

  sudo ./systemd/install.sh                  install or upgrade, enable and start the service
  DESTDIR=/stage ./systemd/install.sh        stage the files under /stage for a package build;
                                             the files inside name the final paths (/opt/...)
  ./systemd/install.sh --prefix DIR          install into a private root DIR: the files inside
                                             name DIR/opt/..., DIR/etc/...; nothing is started

Options:
  --prefix DIR        install into the private root DIR (no root needed, nothing started)
  --no-start          install but do not enable, start or restart the service
  --ready-timeout S   seconds the new version has to answer before it is rolled back (60)
  --bindir DIR        where the sinkhole command goes (/usr/local/bin)
  --unitdir DIR       where sinkhole.service goes (/etc/systemd/system)
  --mandir DIR        where the manual pages go (/usr/local/share/man)
  --sysusersdir DIR   where the sysusers.d entry for the "sinkhole" user goes
                      (/usr/local/lib/sysusers.d)
  -h, --help          show this text

Lays out /opt/sinkhole (the app: dist, production node_modules, package.json, the shipped
lists), BINDIR/sinkhole, /etc/sinkhole/sinkhole.conf (0640 root:sinkhole),
/etc/sinkhole/blocklists/ and UNITDIR/sinkhole.service. Lists come from git's view of the
checkout (git archive HEAD): untracked files and uncommitted edits are not installed.
An upgrade keeps the config, the enabled/disabled state of bundles, local.txt and
local.allow.txt; an edited shipped list is kept and the new one written beside it as
NAME.txt.new. If the new version does not answer within --ready-timeout, the previous one
is put back and restarted.
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

prefix=""
start=yes
ready_timeout=60
bindir=/usr/local/bin
unitdir=/etc/systemd/system
mandir=/usr/local/share/man
sysusersdir=/usr/local/lib/sysusers.d
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --no-start) start=no; shift ;;
    --start) start=force; shift ;;   # with --prefix: start through $SINKHOLE_SYSTEMCTL (tests)
    --ready-timeout) ready_timeout="${2:?--ready-timeout needs seconds}"; shift 2 ;;
    --bindir) bindir="${2:?--bindir needs a folder}"; shift 2 ;;
    --unitdir) unitdir="${2:?--unitdir needs a folder}"; shift 2 ;;
    --mandir) mandir="${2:?--mandir needs a folder}"; shift 2 ;;
    --sysusersdir) sysusersdir="${2:?--sysusersdir needs a folder}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

case "$ready_timeout" in ''|*[!0-9]*) echo "install.sh: --ready-timeout takes whole seconds, not \"$ready_timeout\"" >&2; exit 2 ;; esac

# dest: where files are written; at: the root that paths inside the files name.
#   system:  dest=""         at=""        (sudo ./systemd/install.sh)
#   destdir: dest=$DESTDIR   at=""        (a package build: staged, pointing at the final paths)
#   prefix:  dest=""         at=$prefix   (a private root that runs where it is)
dest="${DESTDIR:-}"
if [ -n "$dest" ] && [ -n "$prefix" ]; then die "give DESTDIR or --prefix, not both"; fi
if [ -n "$dest" ]; then mode=destdir; at=""; dest="$(mkdir -p "$dest" && cd "$dest" && pwd)"
elif [ -n "$prefix" ]; then mode=prefix; at="$(mkdir -p "$prefix" && cd "$prefix" && pwd)"
else mode=system; at=""
fi
# Only a system install starts the service; --prefix --start does through $SINKHOLE_SYSTEMCTL.
if [ "$mode" = destdir ] || { [ "$mode" = prefix ] && [ "$start" != force ]; }; then start=no; fi
systemctl="${SINKHOLE_SYSTEMCTL:-systemctl}"

if [ "$mode" = system ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo $0), or use --prefix DIR to install elsewhere"
fi

# The service runs the node found in the system's PATH (the wrapper below looks there, not in
# the caller's PATH), never one inside a home folder: ProtectHome=yes hides /home and /root
# from the service, so an nvm node would fail there with a bare "permission denied".
system_node() { (PATH=/usr/local/bin:/usr/bin:/bin; command -v node) || true; }
if [ "$mode" != destdir ]; then
  node_bin="$(system_node)"
  if [ -z "$node_bin" ]; then
    other="$(command -v node || true)"
    [ -n "$other" ] && die "Node.js is only at $other, outside /usr/local/bin and /usr/bin where the service looks; install it system-wide: sudo install -m 755 $(readlink -f "$other") /usr/local/bin/node"
    die "Node.js is not installed; install Node.js 20 or newer (see the README's \"Install as a service\"), then run this again"
  fi
  case "$(readlink -f "$node_bin")" in
    /home/*|/root/*) die "$node_bin is $(readlink -f "$node_bin"), inside a home folder the service cannot read (ProtectHome=yes); install Node.js system-wide: sudo install -m 755 $(readlink -f "$node_bin") /usr/local/bin/node" ;;
  esac
  node_major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
  [ "$node_major" -ge 20 ] || die "Node.js 20 or newer is needed, found $("$node_bin" --version) at $node_bin; upgrade it, then run this again"
fi

src="$(cd "$(dirname "$0")/.." && pwd)"
app_dir="$dest$at/opt/sinkhole"      # where the app is written
app="$at/opt/sinkhole"                # what the files call it
etc="$dest$at/etc/sinkhole"
etc_at="$at/etc/sinkhole"

# Build when the compiled files are missing or older than the sources (a release tree has no src/).
if [ -d "$src/src" ] && { [ ! -f "$src/dist/main/cli.js" ] || [ -n "$(find "$src/src" -newer "$src/dist/main/cli.js" -name '*.ts' -print -quit)" ]; }; then
  say "building"
  (cd "$src" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build --silent)
fi
[ -f "$src/dist/main/cli.js" ] || die "$src/dist/main/cli.js is missing; run 'npm ci' in $src, then run this again"

if [ "$mode" = system ] && [ "$start" = yes ]; then
  # Port 53 must be free (or already ours).
  holder="$(ss -Hlnp 'sport = :53' 2>/dev/null | grep -v 'sinkhole\|"node"' | head -n1 || true)"
  if [ -n "$holder" ]; then
    if printf '%s' "$holder" | grep -q systemd-resolve; then
      die "port 53 is held by systemd-resolved's stub listener (127.0.0.53:53). Free it: set DNSStubListener=no in /etc/systemd/resolved.conf, run 'systemctl restart systemd-resolved', then run this again"
    fi
    die "port 53 is already in use: $holder; stop that DNS server (e.g. 'systemctl disable --now dnsmasq'), then run this again"
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The shipped lists: git's view of blocklists/ (the commit checked out), so untracked files,
# uncommitted edits and the checkout's own enable/disable moves are neither installed nor
# recorded as shipped. Outside a git checkout (a release tarball) the folder is taken as is.
mkdir -p "$work/shipped"
# safe.directory: under sudo the checkout belongs to another user, which git would refuse
# ("dubious ownership"); it is only read here.
git_src() { git -C "$src" -c safe.directory='*' "$@"; }
if git_src rev-parse --verify -q HEAD >/dev/null 2>&1 && [ -n "$(git_src ls-files blocklists 2>/dev/null)" ]; then
  mkdir -p "$work/shipped/blocklists"
  # HEAD:<path> is the tree itself, so this works when the checkout is a subfolder of a repository.
  top="$(git_src rev-parse --show-toplevel)"
  git -C "$top" -c safe.directory='*' -c tar.umask=0022 archive --format=tar "HEAD:$(git_src rev-parse --show-prefix)blocklists" \
    | tar -x -C "$work/shipped/blocklists"
  if [ -n "$(git_src status --porcelain --untracked-files=all -- blocklists)" ]; then
    say "blocklists/ has changes git has not committed; installing the committed lists (git archive HEAD)"
  fi
else
  say "$src is not a git checkout: installing $src/blocklists as found (every .txt in it counts as shipped)"
  cp -a "$src/blocklists" "$work/shipped/blocklists"
fi
# The admin's own files are never shipped, whatever the tree holds.
rm -f "$work/shipped/blocklists/local.txt" "$work/shipped/blocklists/local.allow.txt"

# --- The new app, built beside the old one: dist (not the benchmark), the production
# packages only (copied package by package, so no empty @scope folders), package.json, the
# shipped lists, and the wrapper.
say "installing the app in $app_dir"
new="$app_dir.new"
rm -rf "$new"
mkdir -p "$new/bin" "$new/node_modules"
(cd "$src" && tar -c --exclude=./dist/bench --exclude='*.map' ./dist) | tar -x -C "$new"
cp "$src/package.json" "$new/"
cp -a "$work/shipped/blocklists" "$new/blocklists" && chmod -R u=rwX,go=rX "$new/blocklists"
packages="$(cd "$src" && npm ls --omit=dev --all --parseable 2>/dev/null)" \
  || die "npm ls --omit=dev found missing or invalid packages in $src/node_modules; run 'npm ci' there, then run this again"
printf '%s\n' "$packages" | while IFS= read -r path; do
  rel="${path#"$src"/}"
  case "$rel" in node_modules/*) ;; *) continue ;; esac
  if [ -L "$path" ]; then
    # A package of this tree linked in (file:src/net/batch-udp, the optional native addon):
    # only what runs, its package.json and the built .node; no C sources or build leftovers.
    # Not built (no compiler): left out, and the server says it runs on node:dgram.
    built="$(find "$path/build/Release" -maxdepth 1 -name '*.node' 2>/dev/null | head -n1)"
    [ -n "$built" ] || { say "note: ${rel#node_modules/} is not built; the server will run without it"; continue; }
    mkdir -p "$new/$rel/build/Release"
    cp "$path/package.json" "$new/$rel/"
    cp "$path"/build/Release/*.node "$new/$rel/build/Release/"
    continue
  fi
  mkdir -p "$new/$rel"
  # Each package without its own node_modules: nested ones are listed separately.
  (cd "$path" && tar -c --exclude=./node_modules .) | tar -x -C "$new/$rel"
  if [ -f "$new/$rel/binding.gyp" ]; then
    # A native package built here (better-sqlite3): keep the built .node, not its C sources
    # and compiler leftovers (tens of MB).
    rm -rf "$new/$rel/deps" "$new/$rel/build/Release/obj" "$new/$rel/build/Release/obj.target" "$new/$rel/build/Release/.deps"
    find "$new/$rel" \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.o' -o -name '*.a' -o -name '*.mk' -o -name Makefile \) -type f -delete
    find "$new/$rel" -type d -empty -delete
  fi
done
cat > "$new/bin/sinkhole" <<WRAPPER
#!/bin/sh
# The sinkhole command, written by install.sh. It runs the Node.js of the system's PATH (the
# one systemd gives services), not the caller's, so the command and the service run the same
# node; a node inside a home folder is refused: the service cannot read it (ProtectHome=yes).
node=\$(PATH=/usr/local/bin:/usr/bin:/bin; command -v node) || {
  echo "sinkhole: Node.js is not installed in /usr/local/bin, /usr/bin or /bin; install Node.js 20 or newer system-wide" >&2; exit 1; }
case "\$(readlink -f "\$node")" in
  /home/*|/root/*) echo "sinkhole: \$node is \$(readlink -f "\$node"), inside a home folder the service cannot read (ProtectHome=yes); install Node.js 20 or newer system-wide, e.g. sudo install -m 755 \$(readlink -f "\$node") /usr/local/bin/node" >&2; exit 1 ;;
esac
exec "\$node" --min-semi-space-size=4 --max-semi-space-size=4 --single-threaded-gc "$app/dist/main/cli.js" "\$@"
WRAPPER
chmod 755 "$new/bin/sinkhole"

# --- Swap it in, keeping the previous version for a rollback.
prev="$app_dir.prev"
rm -rf "$prev"
unit="$dest$at$unitdir/sinkhole.service"
if [ -d "$app_dir" ]; then
  mv "$app_dir" "$prev"
  mkdir -p "$prev/.rollback"
  [ -d "$etc/blocklists" ] && cp -a "$etc/blocklists" "$prev/.rollback/blocklists"
  [ -f "$unit" ] && cp -a "$unit" "$prev/.rollback/sinkhole.service"
fi
mv "$new" "$app_dir"

# --- The config: installed once, readable by the service's group and nobody else (it may
# hold the admin token); later versions go beside it as .dist for the admin to compare.
at_paths() { if [ -n "$at" ]; then sed -e "s#/etc/sinkhole#$at/etc/sinkhole#g" -e "s#/var/lib/sinkhole#$at/var/lib/sinkhole#g" -e "s#/opt/sinkhole#$at/opt/sinkhole#g"; else cat; fi; }
mkdir -p "$etc"
at_paths < "$src/systemd/sinkhole.conf" > "$work/sinkhole.conf"
if [ ! -f "$etc/sinkhole.conf" ]; then
  install -m 640 "$work/sinkhole.conf" "$etc/sinkhole.conf"
  say "installed $etc/sinkhole.conf"
elif ! cmp -s "$work/sinkhole.conf" "$etc/sinkhole.conf"; then
  install -m 640 "$work/sinkhole.conf" "$etc/sinkhole.conf.dist"
  say "kept your $etc/sinkhole.conf; the shipped one is $etc/sinkhole.conf.dist"
fi

# --- Blocklists: shipped ones updated, the admin's edits and enable/disable state kept.
"$src/systemd/sync-lists.sh" "$app_dir/blocklists" "$etc/blocklists" "$prev/blocklists.sha256" "$app_dir/blocklists.sha256" \
  "$app/blocklists/README.md" | sed 's/^/install.sh: /'

# A private root has no systemd to make the state folder (StateDirectory=): make it here.
if [ "$mode" = prefix ]; then mkdir -p "$at/var/lib/sinkhole"; fi

# --- The unit, the command, the service user, the manual pages.
mkdir -p "$(dirname "$unit")" "$dest$at$bindir" "$dest$at$sysusersdir"
at_paths < "$src/systemd/sinkhole.service" > "$work/sinkhole.service"
# Documentation= names the manual pages; systemd-analyze verify fails on pages man cannot
# find, so the line goes when this tree has none (docs/man/*.5, *.8).
if ! ls "$src"/docs/man/*.[1-8] >/dev/null 2>&1; then sed -i '/^Documentation=man:/d' "$work/sinkhole.service"; fi
install -m 644 "$work/sinkhole.service" "$unit"
ln -sfn "$app/bin/sinkhole" "$dest$at$bindir/sinkhole"
install -m 644 "$src/systemd/sinkhole.sysusers" "$dest$at$sysusersdir/sinkhole.conf"
for page in "$src"/docs/man/*.[1-8]; do
  [ -f "$page" ] || continue
  section="${page##*.}"
  mkdir -p "$dest$at$mandir/man$section"
  install -m 644 "$page" "$dest$at$mandir/man$section/"
done

if [ "$mode" = system ]; then
  # The service's user and group, so that the config can be 0640 root:sinkhole.
  if command -v systemd-sysusers >/dev/null; then systemd-sysusers "$sysusersdir/sinkhole.conf"
  elif ! getent group sinkhole >/dev/null; then useradd --system --user-group --home-dir /var/lib/sinkhole --shell /usr/sbin/nologin sinkhole
  fi
  chown root:sinkhole "$etc/sinkhole.conf"
  chmod 640 "$etc/sinkhole.conf"
  [ -f "$etc/sinkhole.conf.dist" ] && chown root:sinkhole "$etc/sinkhole.conf.dist"
fi

rollback() {
  if [ ! -d "$prev" ]; then
    die "sinkhole did not answer within $ready_timeout s after the install (there is no previous version to go back to); see: journalctl -u sinkhole -n 50"
  fi
  failed_version="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$app_dir/package.json" | head -n1)"
  old_version="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$prev/package.json" | head -n1)"
  rm -rf "$app_dir.failed" && mv "$app_dir" "$app_dir.failed"
  if [ -d "$prev/.rollback/blocklists" ]; then rm -rf "$etc/blocklists" && mv "$prev/.rollback/blocklists" "$etc/blocklists"; fi
  if [ -f "$prev/.rollback/sinkhole.service" ]; then mv "$prev/.rollback/sinkhole.service" "$unit"; fi
  rm -rf "$prev/.rollback"
  mv "$prev" "$app_dir"
  "$systemctl" daemon-reload
  # The previous version answered before: give it at least a minute to do so again.
  if "$systemctl" restart sinkhole.service && "$app_dir/bin/sinkhole" wait-ready --config "$etc_at/sinkhole.conf" --timeout "$((ready_timeout > 60 ? ready_timeout : 60))" >/dev/null 2>&1; then
    die "the new version ($failed_version) did not answer within $ready_timeout s, so the previous one ($old_version) is back and running; the failed one is in $app_dir.failed; see why: journalctl -u sinkhole -n 50"
  fi
  die "the new version ($failed_version) did not answer within $ready_timeout s; the previous one ($old_version) is back in $app_dir but did not answer either; see: journalctl -u sinkhole -n 50"
}

if [ "$start" != no ]; then
  "$systemctl" daemon-reload
  "$systemctl" enable sinkhole.service >/dev/null
  # restart waits for ExecStartPost (wait-ready); the second check covers a unit changed by a drop-in.
  if ! "$systemctl" restart sinkhole.service || ! "$app_dir/bin/sinkhole" wait-ready --config "$etc_at/sinkhole.conf" --timeout "$ready_timeout"; then
    rollback
  fi
  rm -rf "$prev" "$app_dir.failed"
  say "sinkhole is running: systemctl status sinkhole; test it with: dig @127.0.0.1 gateway.messenger.hotmail.com"
else
  rm -rf "$prev"
  case "$mode" in
    destdir) say "staged under $dest for the final paths /opt/sinkhole, /etc/sinkhole; nothing started" ;;
    prefix) say "installed under $at; not started" ;;
    system) say "installed; not started (start it with: systemctl enable --now sinkhole)" ;;
  esac
fi
