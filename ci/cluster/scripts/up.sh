#!/usr/bin/env bash
# Start the single-node cluster (`make cluster-up`) from the binaries that
# build.sh cached. Idempotent: if the cluster is up and healthy it says so and
# exits; if a previous run left pieces behind, they are torn down first.
#
# Layout (see ci/cluster/README.md):
#   network namespace tandem-cluster  every daemon and every pod; no route out
#   /var/lib/tandem-cluster           PKI, etcd data, kubelet and containerd roots
#   /run/tandem-cluster               sockets, pid files, binaries (links)
#   cgroups tandem-system, tandem-pods  the daemons, and every pod
#   127.0.0.1:16443 (host)            apirelay -> API server in the namespace
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (kubelet and containerd need it)"
start=$SECONDS
# shellcheck disable=SC2154 # rc is assigned inside the trap
trap 'rc=$?; [ $rc -eq 0 ] || log "cluster-up failed: logs in $LOG_DIR; make cluster-down removes what was started"' EXIT

if [ -f "$PID_DIR/kubelet.pid" ] && kill -0 "$(cat "$PID_DIR/kubelet.pid")" 2>/dev/null \
  && kubectl_host get --raw /readyz >/dev/null 2>&1; then
  log "cluster is already up (KUBECONFIG=$KUBECONFIG_HOST)"
  exit 0
fi
if [ -e "$NETNS_PATH" ] || [ -d "$RUN_DIR" ] || [ -d "$STATE_DIR" ]; then
  log "leftovers of a previous cluster found: tearing them down first"
  "$CLUSTER_DIR/scripts/down.sh"
fi

# --- preflight -------------------------------------------------------------
"$CLUSTER_DIR/scripts/deps.sh"
for h in cpu cpuacct cpuset memory pids; do
  [ -d "/sys/fs/cgroup/$h" ] || die "cgroup v1 controller $h is not mounted at /sys/fs/cgroup/$h"
done
free_kb=$(df -Pk "$(dirname "$STATE_DIR")" | awk 'NR == 2 {print $4}')
(( free_kb > 6 * 1024 * 1024 )) || die "less than 6 GiB free under $(dirname "$STATE_DIR"): kubelet would evict pods (evictionHard nodefs.available<2Gi)"
relay_port=${API_RELAY_ADDR##*:}
if (exec 3<>"/dev/tcp/127.0.0.1/$relay_port") 2>/dev/null; then
  die "127.0.0.1:$relay_port is already in use (set TANDEM_CLUSTER_API_ADDR)"
fi

declare -A DIRS
while IFS='=' read -r name dir; do DIRS[$name]=$dir; done < <("$CLUSTER_DIR/scripts/build.sh" --print-dirs)
for name in "${!DIRS[@]}"; do
  [ -e "${DIRS[$name]}/.complete" ] || die "$name is not built: run 'make cluster-build'"
done

mkdir -p "$STATE_DIR" "$RUN_DIR" "$BIN_DIR" "$PID_DIR" "$LOG_DIR"
rm -f "$LOG_DIR"/*.log   # one cluster's logs at a time (kept after cluster-down)
# Paths outside our directories that the daemons create at fixed places, and
# how down.sh undoes them if they did not exist before: "rmdir" (only if left
# empty), "tree" (kubelet's device-plugin sockets, libcni's result cache),
# "mount" (ip netns makes /run/netns a mount point).
: >"$RUN_DIR/created"
for entry in "/var/log/containers rmdir" "/run/containerd rmdir" "/run/containerd/s rmdir" \
             "/var/lib/kubelet tree" "/var/lib/cni tree" "/run/netns mount"; do
  [ -e "${entry% *}" ] || echo "$entry" >>"$RUN_DIR/created"
done
for name in kubernetes etcd containerd runc cni coredns tools; do
  ln -sf "${DIRS[$name]}"/bin/* "$BIN_DIR/"
done
log "binaries from $CACHE_ROOT; logs in $LOG_DIR"

# --- network namespace -----------------------------------------------------
# Pods and daemons live here. It has a loopback and the pods' bridge, and no
# default route: nothing inside can reach any address outside this namespace.
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
ip -n "$NETNS" link add "$BRIDGE" type bridge
ip -n "$NETNS" addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
ip -n "$NETNS" link set "$BRIDGE" up
# Service addresses are rewritten by kube-proxy's rules; the route only lets
# the namespace's own processes send to them in the first place.
ip -n "$NETNS" route add "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
in_netns sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1

# --- cgroups ---------------------------------------------------------------
while read -r h; do
  mkdir -p "$h/$CGROUP_SYSTEM" "$h/$CGROUP_PODS"
done < <(cgroup_hierarchies)
for g in "$CGROUP_SYSTEM" "$CGROUP_PODS"; do
  cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$g/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$g/cpuset.mems"
done

# start_daemon NAME [--host] COMMAND...: start a daemon in the cluster's
# namespace (or the host's with --host), in the tandem-system cgroup, logging
# to LOG_DIR/NAME.log, and record its pid.
start_daemon() {
  local name=$1; shift
  local ns=(nsenter "--net=$NETNS_PATH" --)
  if [ "$1" = --host ]; then ns=(); shift; fi
  (
    while read -r h; do echo "$BASHPID" >"$h/$CGROUP_SYSTEM/cgroup.procs"; done < <(cgroup_hierarchies)
    exec setsid "${ns[@]}" env PATH="$BIN_DIR:/usr/sbin:/usr/bin:/sbin:/bin" "$@"
  ) </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$PID_DIR/$name.pid"
  echo "$name" >>"$PID_DIR/order"
  log "started $name (pid $!)"
}

alive() { kill -0 "$(cat "$PID_DIR/$1.pid")" 2>/dev/null || { log "$1 exited; last lines of $LOG_DIR/$1.log:"; tail -n 30 "$LOG_DIR/$1.log" >&2; return 1; }; }

# --- PKI -------------------------------------------------------------------
mkdir -p "$STATE_DIR/pki" "$STATE_DIR/config"
render "$CLUSTER_DIR/config/kubeadm.yaml" >"$STATE_DIR/config/kubeadm.yaml"
"$BIN_DIR/kubeadm" init phase certs all --config "$STATE_DIR/config/kubeadm.yaml" >>"$LOG_DIR/kubeadm.log" 2>&1
"$BIN_DIR/kubeadm" init phase kubeconfig all --config "$STATE_DIR/config/kubeadm.yaml" \
  --kubeconfig-dir "$STATE_DIR/pki" >>"$LOG_DIR/kubeadm.log" 2>&1
"$BIN_DIR/kubeadm" kubeconfig user --config "$STATE_DIR/config/kubeadm.yaml" \
  --client-name system:kube-proxy >"$STATE_DIR/pki/kube-proxy.conf" 2>>"$LOG_DIR/kubeadm.log"
# The host's kubeconfig: admin credentials, through the relay.
sed "s#server: https://127.0.0.1:$API_PORT#server: https://$API_RELAY_ADDR#" "$KUBECONFIG_ADMIN" >"$KUBECONFIG_HOST"
chmod 600 "$STATE_DIR"/pki/*.conf "$KUBECONFIG_HOST"
log "PKI and kubeconfigs written to $STATE_DIR/pki"

# --- control plane -----------------------------------------------------------
pki=$STATE_DIR/pki
start_daemon etcd etcd --name "$NODE_NAME" --data-dir "$STATE_DIR/etcd" \
  --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
  --listen-peer-urls https://127.0.0.1:2380 --initial-advertise-peer-urls https://127.0.0.1:2380 \
  --initial-cluster "$NODE_NAME=https://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381 \
  --cert-file "$pki/etcd/server.crt" --key-file "$pki/etcd/server.key" --client-cert-auth \
  --trusted-ca-file "$pki/etcd/ca.crt" --peer-cert-file "$pki/etcd/peer.crt" --peer-key-file "$pki/etcd/peer.key" \
  --peer-client-cert-auth --peer-trusted-ca-file "$pki/etcd/ca.crt" \
  --snapshot-count 10000 --quota-backend-bytes 2147483648 --log-level warn

start_daemon relay --host apirelay -listen "$API_RELAY_ADDR" -netns "$NETNS_PATH" -target "127.0.0.1:$API_PORT"

wait_until "etcd healthy" 60 in_netns curl -fsS http://127.0.0.1:2381/health || { alive etcd; exit 1; }

start_daemon kube-apiserver kube-apiserver \
  --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port "$API_PORT" \
  --etcd-servers https://127.0.0.1:2379 --etcd-cafile "$pki/etcd/ca.crt" \
  --etcd-certfile "$pki/apiserver-etcd-client.crt" --etcd-keyfile "$pki/apiserver-etcd-client.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-group-headers X-Remote-Group \
  --requestheader-username-headers X-Remote-User \
  --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --profiling=false --v=1

wait_until "API server ready" 120 kubectl_host get --raw /readyz || { alive kube-apiserver; exit 1; }
# The two bindings `kubeadm init` makes: admin.conf's group is cluster-admin,
# and the API server may call the kubelet API (logs, exec, port-forward).
# super-admin.conf (system:masters) is used for these two only.
super() { "$BIN_DIR/kubectl" --kubeconfig "$pki/super-admin.conf" --server "https://$API_RELAY_ADDR" "$@"; }
super create clusterrolebinding kubeadm:cluster-admins --clusterrole cluster-admin --group kubeadm:cluster-admins >/dev/null
super create clusterrolebinding kubeadm:apiserver-kubelet-client --clusterrole system:kubelet-api-admin \
  --user kube-apiserver-kubelet-client >/dev/null

start_daemon kube-controller-manager kube-controller-manager \
  --kubeconfig "$pki/controller-manager.conf" \
  --authentication-kubeconfig "$pki/controller-manager.conf" --authorization-kubeconfig "$pki/controller-manager.conf" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false --v=1

start_daemon kube-scheduler kube-scheduler \
  --kubeconfig "$pki/scheduler.conf" \
  --authentication-kubeconfig "$pki/scheduler.conf" --authorization-kubeconfig "$pki/scheduler.conf" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false --v=1

# --- node ------------------------------------------------------------------
mkdir -p "$STATE_DIR/cni/net.d" "$STATE_DIR/kubelet" "$STATE_DIR/pod-logs"
render "$CLUSTER_DIR/config/cni.conflist" >"$STATE_DIR/cni/net.d/10-tandem.conflist"
render "$CLUSTER_DIR/config/containerd.toml" >"$STATE_DIR/config/containerd.toml"
render "$CLUSTER_DIR/config/kubelet.yaml" >"$STATE_DIR/config/kubelet.yaml"
render "$CLUSTER_DIR/config/kube-proxy.yaml" >"$STATE_DIR/config/kube-proxy.yaml"

start_daemon containerd containerd --config "$STATE_DIR/config/containerd.toml" --log-level warn
wait_until "containerd serving" 60 ctr_cluster version || { alive containerd; exit 1; }
for image in pause coredns smoke; do
  import_image "${DIRS[images]}/$image.tar" >>"$LOG_DIR/images.log" 2>&1 \
    || die "importing $image.tar failed (see $LOG_DIR/images.log)"
done
log "imported the pause, coredns and smoke images"

start_daemon kubelet kubelet --config "$STATE_DIR/config/kubelet.yaml" \
  --kubeconfig "$pki/kubelet.conf" --root-dir "$STATE_DIR/kubelet" --cert-dir "$STATE_DIR/kubelet/pki" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1

start_daemon kube-proxy kube-proxy --config "$STATE_DIR/config/kube-proxy.yaml" --v=1

wait_until "node registered" 120 kubectl_host get node "$NODE_NAME" || { alive kubelet; exit 1; }
kubectl_host wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null || { alive kubelet; alive containerd; exit 1; }
log "node $NODE_NAME Ready"

# --- cluster DNS -----------------------------------------------------------
render "$CLUSTER_DIR/config/coredns.yaml" | kubectl_host apply -f - >/dev/null
kubectl_host -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null \
  || { kubectl_host -n kube-system describe pods -l k8s-app=kube-dns >&2; exit 1; }
log "CoreDNS ready at $DNS_SERVICE_IP"

# --- NetworkPolicy and resource metrics ------------------------------------
# The bridge CNI enforces no NetworkPolicy: kube-network-policies does. And
# metrics-server serves metrics.k8s.io (kubectl top, the HPA).
"$CLUSTER_DIR/scripts/netpol.sh"
"$CLUSTER_DIR/scripts/metrics-server.sh"

# --- KEDA ------------------------------------------------------------------
# The chart's autoscaling (ScaledObjects, external metrics) needs it.
"$CLUSTER_DIR/scripts/keda.sh" install
"$CLUSTER_DIR/scripts/keda.sh" wait

for d in $(cat "$PID_DIR/order"); do alive "$d"; done
log "cluster up in $((SECONDS - start)) s: $("$BIN_DIR/kubectl" version --kubeconfig "$KUBECONFIG_HOST" 2>/dev/null | grep Server)"
log "use it with: export KUBECONFIG=$KUBECONFIG_HOST"
