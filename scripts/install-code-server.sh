#!/usr/bin/env bash
# Install code-server (VS Code in the browser) for the end-to-end tests, once, into a cache folder
# inside the repository (git-ignored). Idempotent: does nothing when that version is already there.
#
#   scripts/install-code-server.sh            # installs into .cache/code-server-4.100.3
#   CODE_SERVER_PREFIX=/opt/cs scripts/install-code-server.sh
#
# Prints the path of the code-server executable on its last line of stdout.
#
# Works without GitHub: code-server's postinstall fetches ripgrep from GitHub releases through
# @vscode/ripgrep; we pre-seed that package's download cache with the system's rg instead.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${CODE_SERVER_VERSION:-4.100.3}"
PREFIX="${CODE_SERVER_PREFIX:-$PWD/.cache/code-server-$VERSION}"
BIN="$PREFIX/node_modules/.bin/code-server"
# @vscode/ripgrep version used by code-server 4.100.3 and the ripgrep release it downloads.
RIPGREP_PKG_VERSION="${RIPGREP_PKG_VERSION:-1.15.11}"
RIPGREP_ASSET="${RIPGREP_ASSET:-ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz}"

log() { echo "install-code-server: $*" >&2; }

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | head -n1 | grep -q "^$VERSION\b"; then
  log "code-server $VERSION already installed in $PREFIX"
  echo "$BIN"
  exit 0
fi

started=$(date +%s)

# Build dependencies of code-server's native modules (node-pty, kerberos, native-keymap, spdlog)
# and ripgrep itself; chromium: the browser the end-to-end suite drives. Run as root (CI), we install
# the missing ones with apt-get, saying so first; otherwise we print the command and stop.
packages=(build-essential python3 libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config ripgrep chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  # --no-upgrade: packages already installed stay as they are (apt still upgrades a library when a new
  # package needs a newer version of it, and lists each change it makes).
  install=(apt-get install -y -q --no-install-recommends --no-upgrade "${missing[@]}")
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "the end-to-end suite needs these Debian/Ubuntu packages: ${missing[*]}"
    log "install them, then rerun: sudo apt-get update && sudo ${install[*]}"
    exit 1
  fi
  log "running as root: installing system packages with apt-get for the end-to-end suite: ${missing[*]}"
  # The machine's package lists first: an update only when they cannot supply the packages, so the
  # install takes the versions that match what is already installed.
  if ! DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2; then
    log "apt-get update, then retrying"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2
  fi
fi

# Seed @vscode/ripgrep's download cache with the system rg (GitHub may be unreachable).
RG="$(command -v rg)"
RG_CACHE="${TMPDIR:-/tmp}/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION"
if [ ! -s "$RG_CACHE/$RIPGREP_ASSET" ]; then
  log "seeding $RG_CACHE/$RIPGREP_ASSET from $RG"
  mkdir -p "$RG_CACHE"
  staging="$(mktemp -d)"
  cp "$RG" "$staging/rg"
  chmod 755 "$staging/rg"
  tar -czf "$RG_CACHE/$RIPGREP_ASSET.partial" -C "$staging" rg
  mv "$RG_CACHE/$RIPGREP_ASSET.partial" "$RG_CACHE/$RIPGREP_ASSET"
  rm -rf "$staging"
fi

# Install into its own prefix, never into the repository's node_modules.
mkdir -p "$PREFIX"
if [ ! -f "$PREFIX/package.json" ]; then
  printf '{\n  "name": "loupe-code-server",\n  "private": true\n}\n' >"$PREFIX/package.json"
fi
log "npm install code-server@$VERSION into $PREFIX (builds native modules; takes a while)"
(
  cd "$PREFIX"
  npm_config_unsafe_perm=true npm_config_yes=true npm_config_fund=false npm_config_audit=false \
    npm_config_update_notifier=false npm install --no-package-lock --loglevel=error "code-server@$VERSION" >&2
)

if ! "$BIN" --version >/dev/null 2>&1; then
  log "code-server did not install: $BIN --version failed"
  exit 1
fi
log "installed $("$BIN" --version | head -n1) in $(( $(date +%s) - started )) s"
echo "$BIN"
