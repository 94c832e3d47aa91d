#!/usr/bin/env bash
# CI's cluster stage (`make e2e-k8s`): build (cached), images, cluster up,
# smoke check, image import, helm install + helm test, tests/k8s, and cluster
# down whatever happened, with diagnostics first if anything failed. Prints
# the time of every step.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT" || exit 1

MAKE=${MAKE:-make}
stage_start=$SECONDS
timings=()
failed=""

step() { # step NAME COMMAND...
  local name=$1 t=$SECONDS; shift
  log "== $name"
  if "$@"; then
    timings+=("$(printf '%-22s %5d s' "$name" $((SECONDS - t)))")
    return 0
  fi
  timings+=("$(printf '%-22s %5d s  FAILED' "$name" $((SECONDS - t)))")
  failed=$name
  return 1
}

diagnose() {
  log "== diagnostics (a step failed: $failed)"
  if [ -f "$KUBECONFIG_HOST" ] && [ -x "$BIN_DIR/kubectl" ]; then
    kubectl_host get nodes -o wide
    kubectl_host get pods -A -o wide
    kubectl_host get events -A --sort-by=.lastTimestamp | tail -n 40
    for p in $(kubectl_host get pods -A --no-headers 2>/dev/null | awk '$3 !~ /^([0-9]+)\/\1$/ && $4 != "Completed" {print $1 "/" $2}'); do
      kubectl_host -n "${p%%/*}" describe pod "${p#*/}" | tail -n 30
      kubectl_host -n "${p%%/*}" logs "${p#*/}" --all-containers --tail 30 2>&1 | sed "s#^#  ${p#*/}: #"
    done
  fi
  for f in "$LOG_DIR"/*.log; do
    [ -f "$f" ] || continue
    echo "--- last lines of $f"; tail -n 15 "$f"
  done
}

finish() {
  local code=$?
  trap - EXIT INT TERM
  [ -n "$failed" ] && { diagnose; code=1; }
  step "cluster-down" "$CLUSTER_DIR/scripts/down.sh" || code=1
  log "== e2e-k8s timings"
  printf '  %s\n' "${timings[@]}" >&2
  log "e2e-k8s $([ "$code" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - stage_start)) s"
  exit "$code"
}
trap finish EXIT
trap 'failed=${failed:-interrupted}; exit 130' INT TERM

step "cluster-build"   $MAKE --no-print-directory cluster-build || exit 1
step "images"          $MAKE --no-print-directory images OFFLINE=1 || exit 1
step "image-archives"  $MAKE --no-print-directory image-archives || exit 1
step "prometheus-image" $MAKE --no-print-directory prometheus-image-archive || exit 1
step "cluster-up"      $MAKE --no-print-directory cluster-up || exit 1
step "cluster-smoke"   $MAKE --no-print-directory cluster-smoke || exit 1
step "load-images"     $MAKE --no-print-directory cluster-load-images || exit 1
step "helm install+test" $MAKE --no-print-directory cluster-install || exit 1
step "tests/k8s"       $MAKE --no-print-directory cluster-test || exit 1
