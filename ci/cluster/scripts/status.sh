#!/usr/bin/env bash
# What is running (`make cluster-status`).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
if [ ! -d "$PID_DIR" ]; then log "cluster is down"; exit 0; fi
for name in $(cat "$PID_DIR/order" 2>/dev/null); do
  pid=$(cat "$PID_DIR/$name.pid" 2>/dev/null)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then state=running; else state=STOPPED; fi
  printf '  %-24s pid %-8s %s\n' "$name" "${pid:--}" "$state"
done
kubectl_host get nodes -o wide
kubectl_host get pods -A -o wide
echo "KUBECONFIG=$KUBECONFIG_HOST   logs: $LOG_DIR"
