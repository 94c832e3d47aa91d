#!/usr/bin/env bash
# Stop the cluster and leave the machine as it was before `cluster-up`
# (`make cluster-down`). Safe to run at any time, any number of times.
#
#   1. kubelet, then every container (through containerd), then the other
#      daemons in reverse start order: by their recorded pids, SIGTERM and,
#      after a grace period, SIGKILL;
#   2. anything still running in the cluster's cgroups (containerd's shims,
#      container processes) is killed; the cgroups are removed;
#   3. every mount under the cluster's directories is unmounted;
#   4. the network namespace is deleted, and with it the bridge, the veths and
#      every iptables chain kube-proxy, kubelet and the CNI plugins made
#      (the host's own netfilter rules were never touched);
#   5. the state and run directories and what up.sh recorded as created
#      outside them are removed. Logs stay in LOG_DIR.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root"
start=$SECONDS

# stop SECONDS NAME...: SIGTERM the recorded pids together, SIGKILL whatever
# is still running after SECONDS.
stop() {
  local grace=$1 name pid; shift
  local -A pids=()
  for name in "$@"; do
    [ -f "$PID_DIR/$name.pid" ] || continue
    pid=$(cat "$PID_DIR/$name.pid")
    kill -TERM "$pid" 2>/dev/null && pids[$name]=$pid
    rm -f "$PID_DIR/$name.pid"
  done
  local deadline=$((SECONDS + grace))
  while (( SECONDS < deadline )); do
    for name in "${!pids[@]}"; do
      kill -0 "${pids[$name]}" 2>/dev/null || { log "stopped $name (pid ${pids[$name]})"; unset "pids[$name]"; }
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    sleep 0.2
  done
  for name in "${!pids[@]}"; do
    log "$name (pid ${pids[$name]}) ignored SIGTERM for ${grace} s: SIGKILL"
    kill -KILL "${pids[$name]}" 2>/dev/null
  done
  sleep 0.2
}

# The pids in a cgroup subtree of the pids hierarchy (every process of ours is there).
pids_in() {
  local root=/sys/fs/cgroup/pids/$1
  [ -d "$root" ] || return 0
  find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null
}

stop 20 kubelet

if [ -S "$CONTAINERD_SOCK" ] && [ -x "$BIN_DIR/ctr" ]; then
  tasks=$(ctr_cluster tasks ls -q 2>/dev/null)
  if [ -n "$tasks" ]; then
    log "stopping $(wc -w <<<"$tasks") containers"
    for t in $tasks; do ctr_cluster tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
    sleep 1
    for t in $tasks; do ctr_cluster tasks delete -f "$t" >/dev/null 2>&1; done
  fi
  containers=$(ctr_cluster containers ls -q 2>/dev/null)
  for c in $containers; do ctr_cluster containers delete "$c" >/dev/null 2>&1; done
fi

if [ -f "$PID_DIR/order" ]; then
  # Everything but etcd together, then etcd, so the API server shuts down cleanly.
  mapfile -t daemons < <(grep -v -x etcd "$PID_DIR/order")
  stop 15 "${daemons[@]}"
  stop 15 etcd
fi

# Stragglers: shims of containers that would not die, processes of pods.
for round in 1 2 3; do
  left=$( { pids_in "$CGROUP_PODS"; pids_in "$CGROUP_SYSTEM"; } | sort -u)
  [ -z "$left" ] && break
  log "killing $(wc -w <<<"$left") remaining processes in the cluster's cgroups (round $round)"
  kill -KILL $left 2>/dev/null
  sleep 1
done

# Mounts under our directories (overlay rootfs, pod volumes, netns bind
# mounts), deepest first.
for round in 1 2 3; do
  mounts=$(awk '{print $5}' /proc/self/mountinfo | grep -E "^($STATE_DIR|$RUN_DIR)(/|$)" | sort -r)
  [ -z "$mounts" ] && break
  log "unmounting $(wc -l <<<"$mounts") mounts (round $round)"
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done <<<"$mounts"
done

if [ -e "$NETNS_PATH" ]; then
  ip netns delete "$NETNS" && log "deleted network namespace $NETNS (bridge, veths, its iptables rules)"
fi

# cgroups, deepest first, in every hierarchy.
while read -r h; do
  for g in "$CGROUP_PODS" "$CGROUP_SYSTEM"; do
    [ -d "$h/$g" ] && find "$h/$g" -depth -type d -exec rmdir {} + 2>/dev/null
  done
done < <(cgroup_hierarchies)

# kubelet's links to container logs (its directory is fixed), if they point to ours.
[ -d /var/log/containers ] && find /var/log/containers -maxdepth 1 -type l -lname "$STATE_DIR/*" -delete
# Paths up.sh found missing before it started (see there).
if [ -f "$RUN_DIR/created" ]; then
  tac "$RUN_DIR/created" | while read -r path how; do
    [ -e "$path" ] || continue
    case $how in
      tree) rm -rf "$path" ;;
      mount) if [ -z "$(ls -A "$path")" ]; then umount "$path" 2>/dev/null; rmdir "$path"; fi ;;
      *) rmdir "$path" 2>/dev/null ;;
    esac
  done
fi
rm -rf "$STATE_DIR" "$RUN_DIR"

# Verify, and say what is left if anything is.
problems=()
left=$( { pids_in "$CGROUP_PODS"; pids_in "$CGROUP_SYSTEM"; } | sort -u)
[ -n "$left" ] && problems+=("processes still running: $left")
while read -r h; do
  for g in "$CGROUP_PODS" "$CGROUP_SYSTEM"; do [ -d "$h/$g" ] && problems+=("cgroup $h/$g"); done
done < <(cgroup_hierarchies)
grep -qE " ($STATE_DIR|$RUN_DIR)(/| )" /proc/self/mountinfo && problems+=("mounts under $STATE_DIR or $RUN_DIR")
[ -e "$NETNS_PATH" ] && problems+=("network namespace $NETNS")
[ -e "$STATE_DIR" ] && problems+=("$STATE_DIR")
[ -e "$RUN_DIR" ] && problems+=("$RUN_DIR")
if [ ${#problems[@]} -gt 0 ]; then
  for p in "${problems[@]}"; do log "left behind: $p"; done
  exit 1
fi
log "cluster down, machine clean ($((SECONDS - start)) s)"
