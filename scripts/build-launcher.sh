#!/usr/bin/env bash
# Builds the bwrap backend's launcher and spawner (src/sandbox/launcher/*.c → build/warden-launch)
# unless it is up to date. Static when the C library's static archive is there (no dynamic loader
# at each sandbox start), dynamic otherwise. Needs gcc and libc6-dev (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
srcs=(src/sandbox/launcher/warden-launch.c src/sandbox/launcher/spawner.c)
out=build/warden-launch
fresh=1
for f in "${srcs[@]}" src/sandbox/launcher/launcher.h; do [ "$out" -nt "$f" ] || fresh=0; done
[ -x "$out" ] && [ "$fresh" = 1 ] && exit 0
mkdir -p build
flags=(-O2 -Wall -Wextra -Werror -o "$out.tmp" "${srcs[@]}")
gcc -static "${flags[@]}" 2>/dev/null || gcc "${flags[@]}"
mv "$out.tmp" "$out"
