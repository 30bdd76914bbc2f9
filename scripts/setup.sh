#!/usr/bin/env bash
# Installs everything Warden needs on a Debian/Ubuntu machine and builds it. Safe to run again.
# System packages come from apt-get (only those missing), npm dependencies from the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# shellcheck source=lib/progress.sh
source scripts/lib/progress.sh

# package:binary that proves it is installed
wanted=(
  bubblewrap:/usr/bin/bwrap
  # The bwrap backend's launcher (src/sandbox/launcher/warden-launch.c) is compiled here.
  gcc:/usr/bin/gcc
  libc6-dev:/usr/include/stdio.h
  util-linux:/usr/bin/setpriv
  util-linux:/usr/bin/prlimit
  python3:/usr/bin/python3
  nodejs:/usr/bin/node
  redis-server:/usr/bin/redis-server
  postgresql:/usr/lib/postgresql/15/bin/initdb
  procps:/usr/bin/ps
  # Jobs: common tools on the default allow-list, and what the egress-proxy tests drive.
  curl:/usr/bin/curl
  # The docker backend: Docker Engine (scripts/dockerd.sh starts its daemon when none runs).
  docker.io:/usr/sbin/dockerd
  # The gvisor backend: gVisor's runsc (runs as root; Warden picks its platform, see warden doctor).
  runsc:/usr/bin/runsc
  # The dashboard's browser tests drive Debian's chromium (headless) with a font to render text in.
  chromium:/usr/bin/chromium
  fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
)
missing=()
for entry in "${wanted[@]}"; do
  pkg=${entry%%:*} bin=${entry#*:}
  [ -e "$bin" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages: ${missing[*]} (run this script as root, or: sudo apt-get install ${missing[*]})"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  step "apt-get update" apt-get update -qq
  step "installing system packages (${missing[*]})" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A package's own service (postgresql, redis) is not what Warden uses: it starts its own on free ports.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  log "Node.js >= 20.18 is required (found $(node --version))"
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing npm dependencies (better-sqlite3 compiles from source: about a minute)" \
    npm ci --no-audit --no-fund --loglevel=error
fi
step "building dist/" npm run --silent build
step "building the sandbox launcher" bash scripts/build-launcher.sh
# The docker backend's daemon and its local image (no registry: built from local files, idempotent).
if bash scripts/dockerd.sh; then
  node bin/warden.js doctor --build-image >/dev/null || true
fi
log "ready: $(node bin/warden.js --version 2>/dev/null || echo warden)"
