#!/usr/bin/env bash
# Make sure a Docker daemon answers and debootstrap is installed, for
# `make images OFFLINE=1` on a fresh Debian CI machine (`make docker-daemon`).
#
#   deploy/images/docker-daemon.sh LOG_DIR
#
# Where Docker already runs (Docker Desktop, a systemd service, a CI runner)
# this only checks. Otherwise, as root on Debian, it installs Debian's
# docker.io (and debootstrap, for the local base image) and starts dockerd in
# the background, since such machines often have no init system to start it.
# The daemon keeps running after the build; its pid is in LOG_DIR/dockerd.pid.
set -euo pipefail

log_dir=${1:?usage: $0 LOG_DIR}
mkdir -p "$log_dir"

missing=()
command -v dockerd >/dev/null || command -v docker >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "missing: ${missing[*]}; install them (Debian: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "installing ${missing[*]} from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$log_dir/apt.log" \
    || { apt-get update >>"$log_dir/apt.log" && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >>"$log_dir/apt.log"; }
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v dockerd >/dev/null; then
  echo "no Docker daemon answers; start one (e.g. systemctl start docker)" >&2
  exit 1
fi
echo "starting dockerd (log: $log_dir/dockerd.log)"
nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
echo $! >"$log_dir/dockerd.pid"
# Bounded wait: a healthy daemon answers within a few seconds.
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not answer within 30 s; last lines of its log:" >&2
tail -n 20 "$log_dir/dockerd.log" >&2
exit 1
