# shellcheck shell=bash
# Shared by the cluster scripts: pinned versions, paths, logging helpers.
# Sourced, not executed: the paths it defines are used by the scripts that
# source it, hence SC2034 off.
# shellcheck disable=SC2034

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$CLUSTER_DIR/../.." && pwd)

# shellcheck source=../versions.env
. "$CLUSTER_DIR/versions.env"
export GOTOOLCHAIN=$GO_TOOLCHAIN
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

# Built binaries live outside the repository, one directory per component and
# input hash, so a fresh clone on a warm machine reuses them and bumping one
# version rebuilds only that component.
CACHE_ROOT=${TANDEM_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem-cluster}

# Run-time state of the one cluster on this machine. Everything `cluster-up`
# creates is under these two directories, the cgroups named below, and the
# network namespace; `cluster-down` removes all of it.
STATE_DIR=${TANDEM_CLUSTER_STATE:-/var/lib/tandem-cluster}
RUN_DIR=${TANDEM_CLUSTER_RUN:-/run/tandem-cluster}
LOG_DIR=${TANDEM_CLUSTER_LOGS:-$REPO_ROOT/.cache/cluster/logs}
NETNS=tandem-cluster
CGROUP_PODS=tandem-pods       # kubelet's cgroupRoot: every pod lives under it
CGROUP_SYSTEM=tandem-system   # the cluster's own daemons (and containerd's shims)

# Addresses. All of them exist only inside the cluster's network namespace,
# which has no route to anywhere: pods and daemons can reach each other and
# nothing else. The host reaches the API server through a relay on 127.0.0.1.
NODE_NAME=tandem-node
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1            # the bridge's address: gateway of the pods
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
BRIDGE=tandem-br0
API_PORT=6443
API_RELAY_ADDR=${TANDEM_CLUSTER_API_ADDR:-127.0.0.1:16443}
KUBECONFIG_ADMIN=$STATE_DIR/pki/admin.conf
# What the host's kubectl, helm and tests use: the admin credentials, pointed at the relay.
KUBECONFIG_HOST=$STATE_DIR/kubeconfig

log() { printf '%s [cluster] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# reports WANT COMMAND...: whether COMMAND's output contains WANT. Not
# `COMMAND | grep -q`: grep exits at the first match, the command's next
# write then gets SIGPIPE, and pipefail turns a match into a failure.
reports() {
  local want=$1 out; shift
  out=$("$@" 2>&1) || return 1
  [[ $out == *"$want"* ]]
}

# The directory of one built component: <cache>/<name>-<version>-<hash of inputs>.
# Inputs are the pinned version, the Go toolchain, the build recipe (the text
# of the shell function that builds it) and the files that shape the build
# (wrapper go.mod/go.sum, our own sources): by name and content, never by
# absolute path, so clones at different paths share the cache.
component_dir() {
  local name=$1 version=$2 recipe=$3; shift 3
  local hash
  hash=$( { echo "$name $version $GO_TOOLCHAIN $(uname -m)"; echo "$recipe"; for f in "$@"; do
      if [ -d "$f" ]; then (cd "$f" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort | xargs sha256sum)
      else echo "$(basename "$f") $(sha256sum <"$f")"; fi
    done; } | sha256sum | cut -c1-12)
  echo "$CACHE_ROOT/$name-$version-$hash"
}

# Image names of what we build FROM scratch (imported, never pulled).
PAUSE_IMAGE=localhost/tandem-cluster/pause:1.0
COREDNS_IMAGE=localhost/tandem-cluster/coredns:${COREDNS_VERSION#v}
SMOKE_IMAGE=localhost/tandem-cluster/smoke:1.0
NETPOL_IMAGE=localhost/tandem-cluster/kube-network-policies:${KUBE_NETWORK_POLICIES_VERSION#v}
METRICS_SERVER_IMAGE=localhost/tandem-cluster/metrics-server:${METRICS_SERVER_VERSION#v}

BIN_DIR=$RUN_DIR/bin          # links to every built binary (PATH of the daemons)
PID_DIR=$RUN_DIR/pids
CONTAINERD_SOCK=$RUN_DIR/containerd/containerd.sock
NETNS_PATH=/run/netns/$NETNS

# The v1 hierarchies mounted here (cpu, memory, ..., name=systemd) and the
# cgroup2 one, as directories under /sys/fs/cgroup.
cgroup_hierarchies() {
  awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts | grep '^/sys/fs/cgroup/' | sort -u
}

in_netns() { nsenter --net="$NETNS_PATH" -- "$@"; }

kubectl_host() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_HOST" "$@"; }
ctr_cluster() { "$BIN_DIR/ctr" --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# import_image ARCHIVE: import an image archive into the kubelet's namespace,
# then pin every image there (label io.cri-containerd.pinned=pinned, which
# containerd's CRI reports to the kubelet as pinned). Once the disk passes
# imageGCHighThresholdPercent the kubelet deletes images no container uses,
# and this cluster has no registry to pull one back from: an image first used
# late in the suite (its Prometheus) would leave the pod in ErrImagePull.
# Prints ctr's output. Only images not pinned yet are labelled: the refs this
# archive added (and any other side-loaded one that missed it).
import_image() {
  local ref
  ctr_cluster images import --local "$1" 2>&1 || return 1
  for ref in $(ctr_cluster images ls | awk 'NR > 1 && $NF !~ /io\.cri-containerd\.pinned=pinned/ {print $1}'); do
    ctr_cluster images label "$ref" io.cri-containerd.pinned=pinned >/dev/null || return 1
  done
}

# wait_until DESCRIPTION SECONDS COMMAND...: poll every second, bounded.
wait_until() {
  local what=$1 limit=$2 start=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start >= limit )); then log "timed out after ${limit} s waiting for $what"; return 1; fi
    sleep 1
  done
  log "$what ($((SECONDS - start)) s)"
}

# Render a config template, substituting only the variables named here.
render() {
  export STATE_DIR RUN_DIR BIN_DIR NODE_NAME NODE_IP POD_CIDR SERVICE_CIDR DNS_SERVICE_IP \
    CLUSTER_DOMAIN BRIDGE API_PORT CGROUP_PODS KUBERNETES_VERSION PAUSE_IMAGE COREDNS_IMAGE SMOKE_IMAGE \
    NETPOL_IMAGE METRICS_SERVER_IMAGE
  envsubst '$STATE_DIR $RUN_DIR $BIN_DIR $NODE_NAME $NODE_IP $POD_CIDR $SERVICE_CIDR $DNS_SERVICE_IP $CLUSTER_DOMAIN $BRIDGE $API_PORT $CGROUP_PODS $KUBERNETES_VERSION $PAUSE_IMAGE $COREDNS_IMAGE $SMOKE_IMAGE $NETPOL_IMAGE $METRICS_SERVER_IMAGE' <"$1"
}
