#!/usr/bin/env bash
# Starts Docker's daemon when it is installed but not running (fresh machines and CI have no init
# system doing it). Warden's containers have no network, so the daemon is started without its
# bridge and iptables rules: it changes nothing in the host's network. A daemon that already
# answers (the operator's own) is used as it is. Safe to run again; prints nothing when all is well.
set -euo pipefail

log() { printf '\033[1m[dockerd]\033[0m %s\n' "$*" >&2; }

[ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ] || exit 0
sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
sock=${sock#unix://}
answers() { curl -sf --max-time 2 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; }
answers && exit 0
if [ "$(id -u)" -ne 0 ]; then
  log "Docker's daemon is not running and starting it needs root (the docker backend is unavailable)"
  exit 0
fi
# The runsc runtime (Docker + gVisor) when runsc is installed: gVisor's own network stack would
# otherwise ignore Docker's network mode (--network=none), and it applies a container's seccomp
# profile to the programs inside only when asked (--oci-seccomp). Our own config file, so the host's
# /etc/docker/daemon.json is neither read nor changed.
config=/run/warden/dockerd.json
mkdir -p /run/warden
if [ -x /usr/bin/runsc ]; then
  echo '{"runtimes":{"runsc":{"path":"/usr/bin/runsc","runtimeArgs":["--network=none","--oci-seccomp"]}}}' >"$config"
else
  echo '{}' >"$config"
fi
log "starting dockerd (log: /var/log/warden-dockerd.log)"
nohup dockerd --config-file "$config" --bridge=none --iptables=false --ip-masq=false \
  >>/var/log/warden-dockerd.log 2>&1 </dev/null &
for _ in $(seq 1 150); do
  answers && exit 0
  sleep 0.2
done
log "dockerd did not answer within 30 s; see /var/log/warden-dockerd.log"
exit 1
