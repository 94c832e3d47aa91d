#!/usr/bin/env bash
# Check the running cluster's networking end to end (`make cluster-smoke`):
# a server pod behind a Service, and a client pod that resolves Service names
# through CoreDNS and calls the server through the Service (kube-proxy's
# rules, the CNI bridge). Both use our smoke image made FROM scratch. Then
# NetworkPolicy, both ways (config/smoke-netpol.yaml): with a deny-all ingress
# policy on the server, and then with an egress policy that lets the client
# send only DNS, the same call must time out. The namespace is created for
# this check and deleted after it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
start=$SECONDS
ns=tandem-smoke
cleanup() { kubectl_host delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT
kubectl_host delete namespace "$ns" --wait=true --timeout=60s >/dev/null 2>&1 || true
render "$CLUSTER_DIR/config/smoke.yaml" | kubectl_host apply -f - >/dev/null
phase() { kubectl_host -n "$ns" get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
# check_pod NAME: wait (bounded) for the check pod to finish, show its output,
# fail unless it succeeded.
check_pod() {
  local pod=$1 deadline=$((SECONDS + 120))
  until [[ $(phase "$pod") =~ ^(Succeeded|Failed)$ ]]; do
    (( SECONDS < deadline )) || { log "$pod did not finish in 120 s"; kubectl_host -n "$ns" describe pods >&2; exit 1; }
    sleep 1
  done
  kubectl_host -n "$ns" logs "$pod" | sed "s/^/  $pod: /" >&2
  [ "$(phase "$pod")" = Succeeded ] || { log "cluster smoke check FAILED ($pod)"; exit 1; }
}
check_pod smoke-check

# NetworkPolicy: the call smoke-check just made must now be dropped.
netpol() { render "$CLUSTER_DIR/config/smoke-netpol.yaml" | kubectl_host "$@" -f - >/dev/null; }
netpol apply -l smoke-step=ingress
check_pod smoke-ingress-denied
netpol delete -l smoke-step=ingress --wait=true --timeout=30s
netpol apply -l smoke-step=egress
check_pod smoke-egress-control
check_pod smoke-egress-denied
# The namespace's isolation, checked on its configuration rather than by
# sending anything out: no default route, and no links but loopback, the
# pods' bridge and the pods' veths.
routes=$(ip -n "$NETNS" route show default)
[ -z "$routes" ] || { log "the cluster's namespace has a default route: $routes"; exit 1; }
links=$(ip -n "$NETNS" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -v -x -e lo -e "$BRIDGE" -e 'veth.*' || true)
[ -z "$links" ] || { log "unexpected links in the cluster's namespace: $links"; exit 1; }
log "cluster smoke check passed in $((SECONDS - start)) s: DNS, Services, pod networking and NetworkPolicy (ingress and egress) work"
