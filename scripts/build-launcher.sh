#!/usr/bin/env bash
# Builds the bwrap backend's launcher (src/sandbox/launcher/warden-launch.c → build/warden-launch)
# unless it is up to date. Static when the C library's static archive is there (no dynamic loader
# at each sandbox start), dynamic otherwise. Needs gcc and libc6-dev (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
src=src/sandbox/launcher/warden-launch.c
out=build/warden-launch
[ -x "$out" ] && [ "$out" -nt "$src" ] && exit 0
mkdir -p build
flags=(-O2 -Wall -Wextra -Werror -o "$out.tmp" "$src")
gcc -static "${flags[@]}" 2>/dev/null || gcc "${flags[@]}"
mv "$out.tmp" "$out"
