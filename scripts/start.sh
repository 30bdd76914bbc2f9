#!/usr/bin/env bash
# One command from a fresh machine to a running service: install and build, check the host, serve.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node bin/warden.js doctor
exec node bin/warden.js serve "$@"
