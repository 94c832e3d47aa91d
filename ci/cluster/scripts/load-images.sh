#!/usr/bin/env bash
# Import image archives (docker save or OCI) into the cluster's containerd,
# in the k8s.io namespace the kubelet uses (`make cluster-load-images`).
# Without arguments: .cache/images/*.tar.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ -S "$CONTAINERD_SOCK" ] || die "the cluster is not up (no $CONTAINERD_SOCK): make cluster-up"
archives=("$@")
if [ ${#archives[@]} -eq 0 ]; then
  shopt -s nullglob; archives=("$REPO_ROOT"/.cache/images/*.tar)
fi
[ ${#archives[@]} -gt 0 ] || die "no image archives given and none in .cache/images (make image-archives)"
for a in "${archives[@]}"; do
  start=$SECONDS
  import_image "$a" | sed 's/^/  /' >&2
  log "imported $(basename "$a") in $((SECONDS - start)) s"
done
ctr_cluster images ls -q | grep -v '^sha256:' | sed 's/^/  /' >&2
