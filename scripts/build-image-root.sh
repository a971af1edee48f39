#!/usr/bin/env bash
# The container image's build steps (the Dockerfile only wraps this script; CI runs it too):
# builds the Rust addon and the TypeScript, packs the package as npm would publish it, and
# installs that package with its production dependencies only into OUT — the runtime
# image's /app: no compiler, no TypeScript, no test tools.
#
#   scripts/build-image-root.sh OUT        (from a fresh clone: npm ci first when node_modules is missing)
#   node OUT/node_modules/voice-bridge/dist/cli.js start
set -euo pipefail
OUT="${1:?usage: scripts/build-image-root.sh OUT}"
cd "$(dirname "$0")/.."
ROOT="$PWD"

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build                      # native addon (cargo, napi-rs) + TypeScript → dist/
node -e "require('./native/dsp-node/index.cjs').simdLevel()" \
  || { echo "build-image-root: the native DSP addon does not load; refusing to build an image without it" >&2; exit 1; }

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
TARBALL="$(npm pack --ignore-scripts --silent --pack-destination "$STAGE" | tail -n 1)"

rm -rf "$OUT"
mkdir -p "$OUT"
cp "$STAGE/$TARBALL" "$OUT/voice-bridge.tgz"
cat > "$OUT/package.json" <<JSON
{ "name": "voice-bridge-app", "private": true, "dependencies": { "voice-bridge": "file:voice-bridge.tgz" } }
JSON
# --omit=dev: production dependencies only; the install hook finds the prebuilt addon in the package.
(cd "$OUT" && npm install --omit=dev --no-audit --no-fund --foreground-scripts)
rm -f "$OUT/voice-bridge.tgz"
echo "build-image-root: $OUT ready ($(du -sh "$OUT" | cut -f1)); run: node $OUT/node_modules/voice-bridge/dist/cli.js start"
