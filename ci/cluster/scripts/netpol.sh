#!/usr/bin/env bash
# NetworkPolicy enforcement on the running cluster (up.sh runs this once the
# node is Ready; root): import the kube-network-policies image that build.sh
# made, apply config/kube-network-policies.yaml, and wait, bounded, until the
# engine is reading its queue. Proved by `make cluster-smoke`, which checks
# that a deny-all policy blocks a connection that works without it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start=$SECONDS
QUEUE=98   # --nfqueue-id in config/kube-network-policies.yaml
dir=$("$CLUSTER_DIR/scripts/build.sh" --print-dirs | sed -n 's/^kube_network_policies=//p')
[ -e "$dir/.complete" ] || die "kube-network-policies is not built: run 'make cluster-build'"
import_image "$dir/image.tar" >>"$LOG_DIR/images.log" 2>&1 \
  || die "importing the kube-network-policies image failed (see $LOG_DIR/images.log)"
render "$CLUSTER_DIR/config/kube-network-policies.yaml" | kubectl_host apply -f - >/dev/null

diagnose() {
  kubectl_host -n kube-system describe pods -l k8s-app=kube-network-policies >&2 || true
  kubectl_host -n kube-system logs -l k8s-app=kube-network-policies --tail=30 >&2 || true
}
kubectl_host -n kube-system rollout status daemonset/kube-network-policies --timeout=90s >/dev/null \
  || { diagnose; die "kube-network-policies not ready after 90 s"; }
# Ready means its metrics answer; it opens the queue only after writing its
# nftables table. The kernel lists the queues that have a reader, per network
# namespace: wait until ours has one.
queue_bound() { in_netns grep -Eq "^[[:space:]]*${QUEUE}[[:space:]]" /proc/net/netfilter/nfnetlink_queue; }
wait_until "kube-network-policies reading nfqueue $QUEUE" 60 queue_bound \
  || { diagnose; die "kube-network-policies did not open nfqueue $QUEUE"; }
log "NetworkPolicy enforced by kube-network-policies ${KUBE_NETWORK_POLICIES_VERSION} ($((SECONDS - start)) s)"
