#!/usr/bin/env bash
# Installs sinkhole as a systemd service. Run it again to upgrade: it never overwrites what
# the admin changed (the config, edited blocklists, bundles moved in or out of available/).
#
#   sudo ./systemd/install.sh              install or upgrade, enable and start
#   ./systemd/install.sh --prefix DIR      install under DIR (tests; no systemctl, no root)
#
# Lays out: /opt/sinkhole (the app), /usr/local/bin/sinkhole (the command),
# /etc/sinkhole/sinkhole.conf, /etc/sinkhole/blocklists/, /etc/systemd/system/sinkhole.service
set -euo pipefail

prefix="${DESTDIR:-}"
start=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --no-start) start=no; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$prefix" ] && start=no

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

if [ -z "$prefix" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo $0), or use --prefix DIR to install elsewhere"
fi

node_bin="$(command -v node || true)"
[ -n "$node_bin" ] || die "Node.js is not installed; install Node.js 20 or newer (e.g. apt-get install nodejs), then run this again"
node_major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is needed, found $("$node_bin" --version) at $node_bin; upgrade it, then run this again"

src="$(cd "$(dirname "$0")/.." && pwd)"
app="$prefix/opt/sinkhole"
bin="$prefix/usr/local/bin"
etc="$prefix/etc/sinkhole"
unit_dir="$prefix/etc/systemd/system"

# Build when the compiled files are missing or older than the sources.
if [ ! -f "$src/dist/main/cli.js" ] || [ -n "$(find "$src/src" -newer "$src/dist/main/cli.js" -name '*.ts' -print -quit)" ]; then
  say "building"
  (cd "$src" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build --silent)
fi

if [ -z "$prefix" ] && [ "$start" = yes ]; then
  # Port 53 must be free (or already ours).
  holder="$(ss -Hlnp 'sport = :53' 2>/dev/null | grep -v 'sinkhole\|"node"' | head -n1 || true)"
  if [ -n "$holder" ]; then
    if printf '%s' "$holder" | grep -q systemd-resolve; then
      die "port 53 is held by systemd-resolved's stub listener (127.0.0.53:53). Free it: set DNSStubListener=no in /etc/systemd/resolved.conf, run 'systemctl restart systemd-resolved', then run this again"
    fi
    die "port 53 is already in use: $holder; stop that DNS server (e.g. 'systemctl disable --now dnsmasq'), then run this again"
  fi
fi

say "installing the app in $app"
mkdir -p "$app" "$bin" "$etc/blocklists/available" "$unit_dir"
rm -rf "$app/dist.new" && cp -a "$src/dist" "$app/dist.new" && rm -rf "$app/dist" && mv "$app/dist.new" "$app/dist"
cp "$src/package.json" "$src/package-lock.json" "$src/README.md" "$app/"
rm -rf "$app/node_modules" && cp -a "$src/node_modules" "$app/node_modules"
(cd "$app" && npm prune --omit=dev --no-audit --no-fund >/dev/null 2>&1) || say "note: could not prune development packages (harmless)"
cat > "$bin/sinkhole" <<WRAPPER
#!/bin/sh
exec "$node_bin" --min-semi-space-size=4 --max-semi-space-size=4 "$app/dist/main/cli.js" "\$@"
WRAPPER
chmod 755 "$bin/sinkhole"

# The config: installed once; later versions go beside it as .dist for the admin to compare.
if [ ! -f "$etc/sinkhole.conf" ]; then
  cp "$src/systemd/sinkhole.conf" "$etc/sinkhole.conf"
  say "installed $etc/sinkhole.conf"
elif ! cmp -s "$src/systemd/sinkhole.conf" "$etc/sinkhole.conf"; then
  cp "$src/systemd/sinkhole.conf" "$etc/sinkhole.conf.dist"
  say "kept your $etc/sinkhole.conf; the shipped one is $etc/sinkhole.conf.dist"
fi

# Blocklists: a shipped file is copied when the admin has none of that name (enabled or in
# available/); updated when the installed copy is still exactly what was shipped last time
# (its checksum is in the manifest); left alone when the admin changed it.
manifest="$app/blocklists.sha256"
touch "$manifest"
new_manifest="$(mktemp)"
for shipped in "$src"/blocklists/*.txt "$src"/blocklists/available/*.txt; do
  [ -f "$shipped" ] || continue
  name="$(basename "$shipped")"
  case "$shipped" in */available/*) home="$etc/blocklists/available" ;; *) home="$etc/blocklists" ;; esac
  if [ -f "$etc/blocklists/$name" ]; then installed="$etc/blocklists/$name"
  elif [ -f "$etc/blocklists/available/$name" ]; then installed="$etc/blocklists/available/$name"
  else installed=""
  fi
  sum="$(sha256sum < "$shipped" | cut -d' ' -f1)"
  if [ -z "$installed" ]; then
    if grep -q "  $name\$" "$manifest"; then
      say "left out $name: you removed it"
    else
      cp "$shipped" "$home/$name"
      say "installed blocklist $home/$name"
    fi
  else
    current="$(sha256sum < "$installed" | cut -d' ' -f1)"
    was="$(grep "  $name\$" "$manifest" | cut -d' ' -f1 || true)"
    if [ "$current" != "$sum" ] && [ -n "$was" ] && [ "$current" = "$was" ]; then
      cp "$shipped" "$installed"
      say "updated $installed"
    elif [ "$current" != "$sum" ]; then
      say "kept your edited $installed"
    fi
  fi
  printf '%s  %s\n' "$sum" "$name" >> "$new_manifest"
done
mv "$new_manifest" "$manifest"
chmod 644 "$manifest"

cp "$src/systemd/sinkhole.service" "$unit_dir/sinkhole.service"

if [ "$start" = yes ]; then
  systemctl daemon-reload
  systemctl enable sinkhole.service >/dev/null
  systemctl restart sinkhole.service
  say "sinkhole is running: systemctl status sinkhole; test it with: dig @127.0.0.1 gateway.messenger.hotmail.com"
else
  say "installed under ${prefix:-/}; not started"
fi
