#!/usr/bin/env bash
# Python tools some tests use, in a venv of the project's own (.venv-tools/, git-ignored),
# installed as the current user from PyPI — nothing system-wide. Prints the venv's bin dir
# as its LAST line; everything else goes to stderr.
#   kubernetes-validate: validates deploy/kubernetes against the Kubernetes schemas it ships (offline)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VB_PY_TOOLS:-$PWD/.venv-tools}"
PKGS=("kubernetes-validate==1.37.0")
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  echo "py-tools: creating $VENV with ${PKGS[*]}" >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PKGS[@]}" >&2
fi
echo "$VENV/bin"
