#!/usr/bin/env bash
# Multi-instance test behind nginx (docs/operations/scaling.md): installs Debian's nginx
# when it is missing, then runs test/lifecycle/nginx.test.ts (two bridge instances on
# loopback behind a generated nginx config). Without nginx that test fails, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

nginx_bin() { command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }

if [ -z "$(nginx_bin)" ]; then
  echo "== installing nginx (Debian package)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  # Do not let the package start a system nginx on :80 (no init system in CI containers
  # anyway); the test runs its own instance with a generated config.
  policy_created=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx
  if [ -n "$policy_created" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi
"$(nginx_bin)" -v

echo "== two instances behind nginx"
npx vitest run test/lifecycle/nginx.test.ts
