#!/usr/bin/env bash
# Regenerates the bundled prompts in assets/prompts (needs Debian's espeak-ng and sox).
set -euo pipefail
cd "$(dirname "$0")/../assets/prompts"
tmp=$(mktemp -d)
espeak-ng -v en-us -s 155 -w "$tmp/apology.wav" "Sorry, we can't continue this call right now. Please try again later. Goodbye."
# trim leading and trailing silence, then 8 kHz mono mu-law
sox "$tmp/apology.wav" -r 8000 -c 1 -e u-law -b 8 apology.8k-ulaw.wav silence 1 0.05 0.5% reverse silence 1 0.05 0.5% reverse
rm -rf "$tmp"
