#!/usr/bin/env bash
# The resource metrics API on the running cluster (up.sh runs this once the
# node is Ready; root): import the metrics-server image that build.sh made,
# apply config/metrics-server.yaml, and wait, bounded, until `kubectl top`
# returns data (the first CPU figure needs two scrapes, 15 s apart).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start=$SECONDS
dir=$("$CLUSTER_DIR/scripts/build.sh" --print-dirs | sed -n 's/^metrics_server=//p')
[ -e "$dir/.complete" ] || die "metrics-server is not built: run 'make cluster-build'"
import_image "$dir/image.tar" >>"$LOG_DIR/images.log" 2>&1 \
  || die "importing the metrics-server image failed (see $LOG_DIR/images.log)"
render "$CLUSTER_DIR/config/metrics-server.yaml" | kubectl_host apply -f - >/dev/null

diagnose() {
  kubectl_host -n kube-system describe pods -l k8s-app=metrics-server >&2 || true
  kubectl_host -n kube-system logs -l k8s-app=metrics-server --tail=30 >&2 || true
  kubectl_host get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions}{"\n"}' >&2 || true
}
kubectl_host -n kube-system rollout status deployment/metrics-server --timeout=90s >/dev/null \
  || { diagnose; die "metrics-server not ready after 90 s"; }
kubectl_host wait --for condition=Available --timeout=60s apiservice/v1beta1.metrics.k8s.io >/dev/null \
  || { diagnose; die "apiservice/v1beta1.metrics.k8s.io not Available after 60 s"; }
# Data, not only an answer: rows with CPU and memory figures.
top_has_data() { [[ $(kubectl_host top pods -A --no-headers 2>/dev/null) == *m*Mi* ]]; }
wait_until "kubectl top returns data" 90 top_has_data || { diagnose; die "kubectl top returned no data in 90 s"; }
kubectl_host top pods -A --no-headers 2>&1 | sed 's/^/  top: /' >&2
log "metrics.k8s.io served by metrics-server ${METRICS_SERVER_VERSION} ($((SECONDS - start)) s)"
