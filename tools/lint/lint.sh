#!/usr/bin/env bash
# Runs ESLint from Loupe's own lint toolchain (this folder), installing it first when it is missing or
# its lockfile changed. `lint.sh` lints the repository; `lint.sh FILE...` lints those files;
# `lint.sh --install-only` only installs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
stamp="$here/node_modules/.installed-from-package-lock.json"

if ! cmp -s "$here/package-lock.json" "$stamp"; then
  echo "lint: installing the lint toolchain (eslint, typescript-eslint) into tools/lint/node_modules" >&2
  npm ci --prefix "$here" --silent --no-audit --no-fund
  cp "$here/package-lock.json" "$stamp"
fi
if [ "${1-}" = "--install-only" ]; then exit 0; fi

cd "$here/../.."
# The cache (keyed by file content and the config) makes a rerun check only the files that changed.
exec "$here/node_modules/.bin/eslint" --max-warnings 0 --cache --cache-strategy content \
  --cache-location "$here/node_modules/.cache/eslint" "${@:-.}"
