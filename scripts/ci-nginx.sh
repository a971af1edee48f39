#!/usr/bin/env bash
# Multi-instance test behind nginx (docs/operations/scaling.md): runs test/lifecycle/nginx.test.ts
# (two bridge instances on loopback behind a generated nginx config). nginx comes from
# scripts/ensure-test-deps.sh: Debian's package, installed only as root with consent (CI=true or
# VB_INSTALL_TEST_DEPS=1) and without starting its service; otherwise it prints the apt-get command.
# Without nginx the test fails, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/test-deps-lib.sh

bash scripts/ensure-test-deps.sh >/dev/null
nginx="$(vb_nginx || true)"
[ -n "$nginx" ] && "$nginx" -v

echo "== two instances behind nginx"
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  url="$(bash scripts/ci-postgres.sh | tail -n 1)"
  export "${url?}"
fi
npx vitest run test/lifecycle/nginx.test.ts
