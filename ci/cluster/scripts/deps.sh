#!/usr/bin/env bash
# Debian packages the cluster needs on the host, installed only when missing
# (`make cluster-deps`; cluster-build and cluster-up run it). Everything else
# is built from the Go module proxy (versions.env).
#   iptables        kube-proxy and kubelet program the cluster's netfilter rules
#   libseccomp-dev  runc is built with seccomp support (cgo)
#   gcc, pkg-config the cgo build of runc
#   gettext-base    envsubst renders config/*
#   jq, curl        the scripts read JSON and poll health endpoints
#   iproute2, util-linux  ip netns, nsenter, flock, findmnt
set -euo pipefail
needed=(iptables libseccomp-dev gcc pkg-config gettext-base jq curl iproute2 util-linux)
missing=()
for p in "${needed[@]}"; do
  [[ $(dpkg-query -W -f '${Status}' "$p" 2>/dev/null) == *"install ok installed"* ]] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
