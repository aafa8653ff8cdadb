#!/usr/bin/env bash
# Install every npm-based test peer into build/node/<peer> (ignored by git).
# Each peer is a folder here with a package.json and, if it needs more than
# `npm install`, an install.sh that is run with the target folder as $1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
for dir in "$here"/*/; do
  name="$(basename "$dir")"
  [ -f "$dir/package.json" ] || continue
  target="$root/build/node/$name"
  mkdir -p "$target"
  cp "$dir/package.json" "$target/"
  [ -f "$dir/package-lock.json" ] && cp "$dir/package-lock.json" "$target/"
  if [ -x "$dir/install.sh" ]; then
    "$dir/install.sh" "$target"
  else
    (cd "$target" && npm install --no-audit --no-fund --loglevel=error)
  fi
done
