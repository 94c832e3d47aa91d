#!/usr/bin/env bash
# Make sure a Docker daemon answers and debootstrap is installed, for
# `make images OFFLINE=1` on a fresh Debian CI machine (`make docker-daemon`).
#
#   deploy/images/docker-daemon.sh LOG_DIR
#
# What counts is a daemon, not a client: many machines ship a `docker`
# command-line client with no daemon behind it. So:
#   1. a daemon already answers (Docker Desktop, a systemd service, a CI
#      runner's): use it, change nothing;
#   2. else, as root on Debian, install Debian's docker.io when there is no
#      `dockerd` to start, and start dockerd in the background (such machines
#      often have no init system to start it). It keeps running after the
#      build; its pid is in LOG_DIR/dockerd.pid.
# debootstrap (for the local base image) is installed when missing.
set -euo pipefail

log_dir=${1:?usage: $0 LOG_DIR}
mkdir -p "$log_dir"

daemon_answers() { docker info >/dev/null 2>&1; }

can_install() { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; }

# apt_install PACKAGE...: from Debian, refreshing the package lists only when
# the first attempt fails (a new machine may have none yet).
apt_install() {
  echo "installing $* from Debian (log: $log_dir/apt.log)"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=600)
  "${apt[@]}" install -y -q --no-install-recommends "$@" >"$log_dir/apt.log" 2>&1 \
    || { "${apt[@]}" update -q >>"$log_dir/apt.log" 2>&1 \
      && "${apt[@]}" install -y -q --no-install-recommends "$@" >>"$log_dir/apt.log" 2>&1; } \
    || { echo "apt-get install $* failed; last lines of $log_dir/apt.log:" >&2; tail -n 20 "$log_dir/apt.log" >&2; exit 1; }
}

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ! daemon_answers && ! command -v dockerd >/dev/null; then
  # docker.io brings dockerd, its containerd and runc; the client it also
  # brings is used only if no other `docker` comes first on PATH.
  missing+=(docker.io)
fi
if ((${#missing[@]})); then
  can_install || { echo "missing: ${missing[*]}; install them (Debian: apt-get install -y ${missing[*]})" >&2; exit 1; }
  apt_install "${missing[@]}"
fi

daemon_answers && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "no Docker daemon answers and dockerd needs root; start one (e.g. systemctl start docker)" >&2
  exit 1
fi
echo "starting dockerd (log: $log_dir/dockerd.log)"
nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
echo $! >"$log_dir/dockerd.pid"
# Bounded wait: a healthy daemon answers within a few seconds.
for _ in $(seq 1 60); do
  daemon_answers && exit 0
  sleep 0.5
done
echo "dockerd did not answer within 30 s; last lines of its log:" >&2
tail -n 20 "$log_dir/dockerd.log" >&2
exit 1
