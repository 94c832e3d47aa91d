#!/usr/bin/env bash
# KEDA on the running cluster, from the `keda` component that build.sh cached
# (binaries, images FROM scratch, CRDs). up.sh runs both steps once CoreDNS is
# ready; each can be run again by hand (root, cluster up).
#
#   keda.sh install   import the three images, apply the CRDs and config/keda.yaml
#   keda.sh wait      wait, bounded, for the three Deployments and the
#                     external metrics APIService to be Available
set -euo pipefail
. "$(dirname "$0")/lib.sh"

NAMESPACE=keda
DEPLOYMENTS=(keda-operator keda-metrics-apiserver keda-admission-webhooks)
APISERVICE=v1beta1.external.metrics.k8s.io
# Bounds: the operator must start, write the certificate Secret and the
# kubelet must mount it into the other two before they can start (its
# Secret volume is refreshed about once a minute), so allow a few minutes.
DEPLOYMENT_TIMEOUT=240
APISERVICE_TIMEOUT=120

keda_dir() {
  local dir
  dir=$("$CLUSTER_DIR/scripts/build.sh" --print-dirs | sed -n 's/^keda=//p')
  [ -e "$dir/.complete" ] || die "KEDA is not built: run 'make cluster-build'"
  echo "$dir"
}

install() {
  local dir image
  dir=$(keda_dir)
  # KEDA_OPERATOR_IMAGE, KEDA_METRICS_APISERVER_IMAGE, KEDA_WEBHOOKS_IMAGE
  # shellcheck source=/dev/null
  . "$dir/images.env"
  for image in keda-operator keda-metrics-apiserver keda-admission-webhooks; do
    import_image "$dir/$image.tar" >>"$LOG_DIR/images.log" 2>&1 \
      || die "importing $image.tar failed (see $LOG_DIR/images.log)"
  done
  log "imported the KEDA images"

  # Server-side: the ScaledJob CRD (about 650 KB) is larger than the 256 KiB
  # annotation in which client-side apply keeps the last applied object.
  kubectl_host apply --server-side --field-manager=tandem-cluster -f "$dir/crds.yaml" >/dev/null
  kubectl_host wait --for condition=Established --timeout=60s -f "$dir/crds.yaml" >/dev/null

  export KEDA_OPERATOR_IMAGE KEDA_METRICS_APISERVER_IMAGE KEDA_WEBHOOKS_IMAGE CLUSTER_DOMAIN NODE_IP API_PORT
  # shellcheck disable=SC2016 # the names envsubst may replace, not expansions
  envsubst '$KEDA_OPERATOR_IMAGE $KEDA_METRICS_APISERVER_IMAGE $KEDA_WEBHOOKS_IMAGE $CLUSTER_DOMAIN $NODE_IP $API_PORT' \
    <"$CLUSTER_DIR/config/keda.yaml" | kubectl_host apply --server-side --field-manager=tandem-cluster -f - >/dev/null
  log "KEDA ${KEDA_VERSION} applied (namespace $NAMESPACE)"
}

# On failure: what the pods and the APIService say, and the last log lines.
diagnose() {
  kubectl_host -n "$NAMESPACE" get pods -o wide >&2 || true
  kubectl_host -n "$NAMESPACE" get events --sort-by=.lastTimestamp >&2 || true
  kubectl_host get apiservice "$APISERVICE" -o jsonpath='{.status.conditions}{"\n"}' >&2 || true
  local d
  for d in "${DEPLOYMENTS[@]}"; do
    log "last lines of deployment/$d:"
    kubectl_host -n "$NAMESPACE" logs "deployment/$d" --tail=30 >&2 || true
  done
}

wait_ready() {
  local start=$SECONDS d
  for d in "${DEPLOYMENTS[@]}"; do
    # One budget for the three: each waits only for what is left of it.
    local left=$(( DEPLOYMENT_TIMEOUT - (SECONDS - start) ))
    (( left > 0 )) || left=1
    kubectl_host -n "$NAMESPACE" wait --for condition=Available --timeout="${left}s" "deployment/$d" >/dev/null \
      || { log "deployment/$d not Available after ${DEPLOYMENT_TIMEOUT} s"; diagnose; return 1; }
  done
  log "KEDA deployments Available ($((SECONDS - start)) s)"
  # The version build.sh linked in (the operator logs it when it starts).
  reports "KEDA Version: ${KEDA_VERSION#v}" kubectl_host -n "$NAMESPACE" logs deployment/keda-operator \
    || { log "keda-operator does not log KEDA Version: ${KEDA_VERSION#v}"; diagnose; return 1; }
  kubectl_host wait --for condition=Available --timeout="${APISERVICE_TIMEOUT}s" "apiservice/$APISERVICE" >/dev/null \
    || { log "apiservice/$APISERVICE not Available after ${APISERVICE_TIMEOUT} s"; diagnose; return 1; }
  # Available means the API server reached it; this proves it answers.
  kubectl_host get --raw "/apis/external.metrics.k8s.io/v1beta1" >/dev/null \
    || { log "external.metrics.k8s.io/v1beta1 does not answer"; diagnose; return 1; }
  log "KEDA ready: external.metrics.k8s.io served ($((SECONDS - start)) s)"
}

case "${1:-}" in
  install) install ;;
  wait) wait_ready ;;
  *) echo "usage: $0 install|wait" >&2; exit 2 ;;
esac
