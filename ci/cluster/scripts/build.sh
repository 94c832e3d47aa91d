#!/usr/bin/env bash
# Build every binary and image the cluster runs, from the Go module proxy, into
# the cache outside the repository (`make cluster-build`). Each component goes
# to its own directory keyed by its pinned version and build recipe; a
# component whose directory is complete is not rebuilt.
#
#   build.sh [component...]     components: tools kubernetes etcd containerd runc
#                               cni coredns images keda kube_network_policies
#                               metrics_server (default: all)
#   build.sh --print-dirs       print NAME=DIR for every component
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# A component is complete when its stamp exists; the stamp is written last.
done_stamp() { echo "$1/.complete"; }

# build_component NAME DIR FUNCTION: run FUNCTION into a temporary directory
# beside DIR and move it into place only when it succeeded.
build_component() {
  local name=$1 dir=$2 fn=$3
  if [ -e "$(done_stamp "$dir")" ]; then log "$name: cached in $dir"; return; fi
  local tmp=$dir.tmp.$$ start=$SECONDS
  # Builds hold the cache lock, so any other temporary directory is an
  # interrupted build's: remove it. A failed build removes its own.
  rm -rf "$dir".tmp.*; mkdir -p "$tmp/bin"
  trap 'rm -rf "'"$tmp"'"' EXIT
  log "$name: building into $dir"
  "$fn" "$tmp"
  echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s by $(go version)" >"$(done_stamp "$tmp")"
  rm -rf "$dir"; mv "$tmp" "$dir"
  trap - EXIT
  log "$name: built in $((SECONDS - start)) s"
}

k8s_ldflags() {
  # The version the components report (kubectl version, /version, node info),
  # as upstream's hack/lib/version.sh sets it. gitCommit is left empty: the
  # module proxy does not carry it. buildDate is the tag's time, so builds
  # are reproducible.
  local v=$KUBERNETES_VERSION date minor
  date=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^[[:space:]]*"Info": "\(.*\)",$/\1/p' | xargs sed -n 's/.*"Time":"\([^"]*\)".*/\1/p')
  minor=${v#v1.}; minor=${minor%%.*}
  local flags="-s -w" pkg key val
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    for kv in "gitVersion=$v" "gitMajor=1" "gitMinor=$minor" "gitCommit=" "gitTreeState=archive" "buildDate=$date"; do
      key=${kv%%=*}; val=${kv#*=}
      flags+=" -X $pkg.$key=$val"
    done
  done
  echo "$flags"
}

build_kubernetes() {
  local out=$1 wrapper=$CLUSTER_DIR/wrappers/kubernetes
  grep -qE "^(require |\s+)k8s.io/kubernetes $KUBERNETES_VERSION( |\$)" "$wrapper/go.mod" \
    || die "wrappers/kubernetes/go.mod is not for $KUBERNETES_VERSION: run 'make cluster-wrappers'"
  (cd "$wrapper" && CGO_ENABLED=0 go build -trimpath -ldflags "$(k8s_ldflags)" -o "$out/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubeadm)
  reports "Client Version: $KUBERNETES_VERSION" "$out/bin/kubectl" version --client || die "kubectl does not report $KUBERNETES_VERSION"
}

build_etcd() {
  local out=$1 wrapper=$CLUSTER_DIR/wrappers/etcd
  grep -qE "^(require |\s+)go.etcd.io/etcd/server/v3 $ETCD_VERSION( |\$)" "$wrapper/go.mod" \
    || die "wrappers/etcd/go.mod is not for $ETCD_VERSION: run 'make cluster-wrappers'"
  (cd "$wrapper" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3)
  reports "etcd Version: ${ETCD_VERSION#v}" "$out/bin/etcd" --version || die "etcd does not report $ETCD_VERSION"
}

build_containerd() {
  local out=$1 v=$CONTAINERD_VERSION
  GOBIN=$out/bin CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$v" \
    "github.com/containerd/containerd/v2/cmd/containerd@$v" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$v" \
    "github.com/containerd/containerd/v2/cmd/ctr@$v"
}

build_runc() {
  # runc needs cgo for its seccomp support (libseccomp, from Debian).
  local out=$1 v=$RUNC_VERSION
  GOBIN=$out/bin CGO_ENABLED=1 go install -trimpath -tags "seccomp urfave_cli_no_docs" \
    -ldflags "-s -w -X main.version=${v#v}" "github.com/opencontainers/runc@$v"
  reports "runc version ${v#v}" "$out/bin/runc" --version || die "runc does not report $v"
}

build_cni() {
  local out=$1 v=$CNI_PLUGINS_VERSION m=github.com/containernetworking/plugins
  GOBIN=$out/bin CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X $m/pkg/utils/buildversion.BuildVersion=$v" \
    "$m/plugins/main/bridge@$v" "$m/plugins/main/loopback@$v" \
    "$m/plugins/ipam/host-local@$v" "$m/plugins/meta/portmap@$v"
}

build_coredns() {
  local out=$1
  (cd "$CLUSTER_DIR/wrappers/coredns" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/bin/coredns" .)
}


build_tools() {
  local out=$1
  (cd "$CLUSTER_DIR/tools" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/bin/" ./cmd/...)
}

# The images the cluster itself needs, made FROM scratch by our own mkimage
# (an OCI archive with one layer): the pod sandbox (pause) and CoreDNS.
build_images() {
  local out=$1 tools coredns
  tools=$(tools_dir); coredns=$(coredns_dir)
  "$tools/bin/mkimage" -o "$out/pause.tar" -name "$PAUSE_IMAGE" -entrypoint /pause \
    -user 65535:65535 -file "/pause=$tools/bin/pause"
  "$tools/bin/mkimage" -o "$out/coredns.tar" -name "$COREDNS_IMAGE" -entrypoint /coredns \
    -file "/coredns=$coredns/bin/coredns" -user 65532:65532 -port 1053/udp -port 1053/tcp
  "$tools/bin/mkimage" -o "$out/smoke.tar" -name "$SMOKE_IMAGE" -entrypoint /smoke \
    -file "/smoke=$tools/bin/smoke" -user 65532:65532
}

# KEDA: the operator, the metrics API server and the admission webhooks, under
# upstream's binary names (its Makefile: bin/keda, bin/keda-adapter,
# bin/keda-admission-webhooks) and with its version variable (GO_LDFLAGS; the
# release sets the tag without its "v"). GitCommit stays empty: the module
# proxy does not carry it. (-trimpath keeps -ldflags out of the build info, so
# scripts/keda.sh checks the version the operator logs.) Then, into the same
# directory:
#   crds.yaml     upstream's config/crd kustomization (the CRDs with its
#                 patches, as its keda-<version>-crds.yaml), rendered by kubectl
#   *.tar         an image FROM scratch per binary (mkimage)
#   images.env    their names, read by scripts/keda.sh
build_keda() {
  local out=$1 wrapper=$CLUSTER_DIR/wrappers/keda m=github.com/kedacore/keda/v2 v=${KEDA_VERSION#v} src dep crds
  for dep in kubernetes tools; do
    [ -e "$("${dep}_dir")/.complete" ] || die "keda needs $dep built first: build.sh $dep keda"
  done
  grep -qE "^(require |\s+)$m $KEDA_VERSION( |\$)" "$wrapper/go.mod" \
    || die "wrappers/keda/go.mod is not for $KEDA_VERSION: run 'make cluster-wrappers'"
  (cd "$wrapper" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $m/version.Version=$v" -o "$out/bin/" \
    "$m/cmd/operator" "$m/cmd/adapter" "$m/cmd/webhooks")
  mv "$out/bin/operator" "$out/bin/keda"
  mv "$out/bin/adapter" "$out/bin/keda-adapter"
  mv "$out/bin/webhooks" "$out/bin/keda-admission-webhooks"

  # The module's source, as pinned by the wrapper's go.sum.
  src=$(cd "$wrapper" && go mod download -json "$m" | jq -r .Dir)
  "$(kubernetes_dir)/bin/kubectl" kustomize "$src/config/crd" >"$out/crds.yaml"
  crds=$(grep -c '^kind: CustomResourceDefinition$' "$out/crds.yaml")
  [ "$crds" -eq "$(grep -c '^- bases/' "$src/config/crd/kustomization.yaml")" ] \
    || die "$out/crds.yaml has $crds CRDs, not the ones $src/config/crd/kustomization.yaml lists"

  local tools repo=localhost/tandem-cluster name bin var
  tools=$(tools_dir)
  while read -r name bin var; do
    "$tools/bin/mkimage" -o "$out/$name.tar" -name "$repo/$name:$v" -entrypoint "/$bin" \
      -file "/$bin=$out/bin/$bin" -user 65532:65532
    echo "$var=$repo/$name:$v" >>"$out/images.env"
  done <<'IMAGES'
keda-operator keda KEDA_OPERATOR_IMAGE
keda-metrics-apiserver keda-adapter KEDA_METRICS_APISERVER_IMAGE
keda-admission-webhooks keda-admission-webhooks KEDA_WEBHOOKS_IMAGE
IMAGES
}

# A pinned module's source, as the Go module proxy serves it (read-only).
module_source() { go mod download -json "$1" | jq -er .Dir; }

# An image FROM scratch holding one binary (mkimage), beside it in OUT.
image_of() {
  local out=$1 image=$2 bin=$3; shift 3
  "$(tools_dir)/bin/mkimage" -o "$out/image.tar" -name "$image" -entrypoint "/$bin" \
    -file "/$bin=$out/bin/$bin" "$@"
}

# kube-network-policies: the NetworkPolicy engine kind's kindnet uses. It
# queues the first packet of each connection to or from a pod to itself
# (nftables + nfqueue) and accepts or drops it. Built from upstream's ./cmd
# as its Dockerfile does, after one patch (see the patch's header: this
# kernel has no nft_queue). Module without replace directives, but the binary
# is a directory named cmd, so: build from a patched copy of the source.
build_kube_network_policies() {
  local out=$1 v=$KUBE_NETWORK_POLICIES_VERSION src
  src=$(module_source "sigs.k8s.io/kube-network-policies@$v")
  cp -r "$src" "$out/src" && chmod -R u+w "$out/src"
  patch -d "$out/src" -p1 --forward --quiet <"$CLUSTER_DIR/patches/kube-network-policies-xt-nfqueue.patch"
  (cd "$out/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/bin/kube-network-policies" ./cmd)
  rm -rf "$out/src"
  # root: nftables and nfqueue need CAP_NET_ADMIN (the pod adds only that).
  image_of "$out" "$NETPOL_IMAGE" kube-network-policies -user 0:0
}

# metrics-server: the resource metrics API (metrics.k8s.io). Its module has
# no replace directives; version variables as its Makefile sets them.
build_metrics_server() {
  local out=$1 v=$METRICS_SERVER_VERSION p=k8s.io/client-go/pkg/version
  GOBIN=$out/bin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w -X $p.gitVersion=$v -X $p.gitTreeState=archive" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$v"
  reports "$v" "$out/bin/metrics-server" --version || die "metrics-server does not report $v"
  image_of "$out" "$METRICS_SERVER_IMAGE" metrics-server -user 65534:65534 -port 10250/tcp
}

recipe() { declare -f "build_$1"; }
kubernetes_dir() { component_dir kubernetes "$KUBERNETES_VERSION" "$(recipe kubernetes; declare -f k8s_ldflags)" "$CLUSTER_DIR/wrappers/kubernetes/go.mod" "$CLUSTER_DIR/wrappers/kubernetes/go.sum"; }
etcd_dir()       { component_dir etcd "$ETCD_VERSION" "$(recipe etcd)" "$CLUSTER_DIR/wrappers/etcd/go.mod" "$CLUSTER_DIR/wrappers/etcd/go.sum"; }
containerd_dir() { component_dir containerd "$CONTAINERD_VERSION" "$(recipe containerd)"; }
runc_dir()       { component_dir runc "$RUNC_VERSION" "$(recipe runc)"; }
cni_dir()        { component_dir cni-plugins "$CNI_PLUGINS_VERSION" "$(recipe cni)"; }
coredns_dir()    { component_dir coredns "$COREDNS_VERSION" "$(recipe coredns)" "$CLUSTER_DIR/wrappers/coredns"; }
tools_dir()      { component_dir tools local "$(recipe tools)" "$CLUSTER_DIR/tools"; }
# mkimage makes their images: the tools' directory is an input.
kube_network_policies_dir() { component_dir kube-network-policies "$KUBE_NETWORK_POLICIES_VERSION" "$(recipe kube_network_policies; declare -f module_source image_of) $NETPOL_IMAGE $(tools_dir)" "$CLUSTER_DIR/patches/kube-network-policies-xt-nfqueue.patch"; }
metrics_server_dir() { component_dir metrics-server "$METRICS_SERVER_VERSION" "$(recipe metrics_server; declare -f image_of) $METRICS_SERVER_IMAGE $(tools_dir)"; }
images_dir()     { component_dir images "$COREDNS_VERSION" "$(recipe images) $PAUSE_IMAGE $COREDNS_IMAGE $SMOKE_IMAGE $(tools_dir) $(coredns_dir)"; }
# kubectl renders the CRDs and mkimage makes the images: their directories
# are inputs (a new one rebuilds KEDA, mostly from the Go build cache).
keda_dir()       { component_dir keda "$KEDA_VERSION" "$(recipe keda) $(tools_dir) $(kubernetes_dir)" "$CLUSTER_DIR/wrappers/keda/go.mod" "$CLUSTER_DIR/wrappers/keda/go.sum"; }

ALL=(tools kubernetes etcd containerd runc cni coredns images keda kube_network_policies metrics_server)

if [ "${1:-}" = "--print-dirs" ]; then
  for c in "${ALL[@]}"; do echo "$c=$("${c}_dir")"; done
  exit 0
fi

mkdir -p "$CACHE_ROOT"
# One build at a time per cache (a second `make cluster-build` waits).
exec 9>"$CACHE_ROOT/.lock"
flock 9

if [ $# -eq 0 ]; then set -- "${ALL[@]}"; fi
start=$SECONDS
for c in "$@"; do build_component "$c" "$("${c}_dir")" "build_$c"; done
log "all requested components ready in $((SECONDS - start)) s (cache: $CACHE_ROOT)"
