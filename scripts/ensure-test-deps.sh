#!/usr/bin/env bash
# Debian packages the test suite needs beyond npm and cargo: a PostgreSQL server (the
# store tests run against a real one; scripts/ci-postgres.sh starts a throwaway cluster)
# and nginx (the two-instance scale-out test). Installs only what is missing; needs root
# (or sudo) and apt. Prints nothing to stdout when everything is already there.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
echo "== installing Debian packages for the tests: ${need[*]}" >&2
# Keep the packages from starting system services (the tests start their own instances).
policy_created=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  policy_created=1
fi
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
[ -n "$policy_created" ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit 0
