#!/usr/bin/env bash
# Regenerates the bundled prompts in assets/prompts (needs Debian's espeak-ng and sox).
set -euo pipefail
cd "$(dirname "$0")/../assets/prompts"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# prompt <name> <text> [pad seconds]: trim leading and trailing silence, then 8 kHz mono mu-law;
# the pad is silence kept at the end so the last word is played before the stream closes.
prompt() {
  espeak-ng -v en-us -s 155 -w "$tmp/$1.wav" "$2"
  sox "$tmp/$1.wav" -r 8000 -c 1 -e u-law -b 8 "$1.8k-ulaw.wav" silence 1 0.05 0.5% reverse silence 1 0.05 0.5% reverse pad 0 "${3:-0}"
}
prompt apology "Sorry, we can't continue this call right now. Please try again later. Goodbye."
prompt goodbye "We're sorry, this line has to close now. Please call again in a moment. Goodbye." 0.2
