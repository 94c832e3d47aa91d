#!/usr/bin/env bash
# The one install recipe for the chart: `make deploy` (kind, minikube or the
# current kube-context) and the CI cluster's `make cluster-install` both run it,
# so CI proves the very steps a user runs.
#
#   install.sh RELEASE NAMESPACE CHART [helm upgrade arguments...]
#
# HELM and KUBECTL name the binaries (default: from PATH); KUBECONFIG is
# honoured by both. INSTALL_TIMEOUT bounds `helm upgrade --wait` (default 10m),
# TEST_TIMEOUT the `helm test` run (default 5m).
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 RELEASE NAMESPACE CHART [helm upgrade arguments...]" >&2
  exit 2
fi
release=$1 namespace=$2 chart=$3
shift 3
helm=${HELM:-helm}
kubectl=${KUBECTL:-kubectl}

if [ ! -f "$chart/Chart.yaml" ]; then
  echo "install.sh: no chart at $chart" >&2
  exit 1
fi

# The namespace enforces Pod Security "restricted": the install itself proves
# that the chart's pods meet it (non-root, read-only root, no capabilities).
"$kubectl" create namespace "$namespace" --dry-run=client -o yaml \
  | "$kubectl" label --local -f - -o yaml \
      pod-security.kubernetes.io/enforce=restricted \
      pod-security.kubernetes.io/warn=restricted \
  | "$kubectl" apply -f -

# --wait: every Deployment's pods are Ready, which for a core means its model
# is loaded and warmed (docs/kubernetes.md), not that the process started.
"$helm" upgrade --install "$release" "$chart" --namespace "$namespace" \
  --wait --timeout "${INSTALL_TIMEOUT:-10m}" "$@"

# helm test: one real embedding through the gateway's Service, in-cluster.
"$helm" test "$release" --namespace "$namespace" --logs --timeout "${TEST_TIMEOUT:-5m}"
