{{/*
Names, labels and the values the chart derives from other values: the core's
resources from the worker math, the upstream target, grace periods.
*/}}

{{/*
Base name of every object: <release>-<chart>, or the release name when it
already contains the chart name. Capped at 40 characters so that the longest
suffix ("-core-headless", "-gateway-metrics") still fits a 63-character DNS
label without being cut off.
*/}}
{{- define "tandem.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tandem.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object names, one place for each. */}}
{{- define "tandem.gateway.fullname" -}}{{ include "tandem.fullname" . }}-gateway{{- end -}}
{{- define "tandem.gateway.metricsServiceName" -}}{{ include "tandem.fullname" . }}-gateway-metrics{{- end -}}
{{/*
A core pool's names (call with a pool context, _pools.tpl): the first pool
keeps the names a single-model release had (<fullname>-core,
-core-headless, -core-metrics); every other is <fullname>-core-<pool name>.
The fullname is cut so that the longest suffix still fits 63 characters
(pool names have at most 16; "headless" and "metrics" are refused, they
would collide with the first pool's Services).
*/}}
{{- define "tandem.core.fullname" -}}
{{- $pool := get . "pool" -}}
{{- if or (not $pool) $pool.primary -}}
{{- include "tandem.fullname" . }}-core
{{- else -}}
{{- printf "%s-core-%s" (include "tandem.fullname" . | trunc (int (sub 48 (len $pool.name))) | trimSuffix "-") $pool.name -}}
{{- end -}}
{{- end -}}
{{- define "tandem.core.metricsServiceName" -}}{{ include "tandem.core.fullname" . }}-metrics{{- end -}}
{{- define "tandem.core.headlessServiceName" -}}{{ include "tandem.core.fullname" . }}-headless{{- end -}}

{{/*
Labels of every object (app.kubernetes.io/* recommended labels). Call with
(dict "root" $ "component" "gateway"|"core"|...).
*/}}
{{- define "tandem.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tandem.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: tandem
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The labels a component's Services, NetworkPolicies, PDB and spread
constraints select on. Never change them in an upgrade: a Deployment's
selector is immutable. A core pool's (root is a pool context, _pools.tpl)
add tandem/pool: <pool name>, so each pool's Deployment, Services, PDB and
HPA see only its own pods; selecting on the component alone (the
NetworkPolicy, the ServiceMonitor) takes every pool's.
*/}}
{{- define "tandem.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tandem.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with get .root "pool" }}
tandem/pool: {{ .name }}
{{- end }}
{{- end -}}

{{/*
Image reference: repository:tag, or repository@digest when a digest is
given. The tag defaults to the chart's appVersion and may never be
"latest", which would make every start pull (and fail without a registry).
Call with (dict "root" $ "image" .Values.x.image).
*/}}
{{- define "tandem.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag | toString -}}
{{- if eq $tag "latest" -}}
{{- fail (printf "image %s: the tag \"latest\" is not allowed; pin a version (it makes every pod start pull the image)" .image.repository) -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* A component's ServiceAccount (the core's is shared by every pool). Call with (dict "root" $ "component" "gateway"|"core"). */}}
{{- define "tandem.serviceAccountName" -}}
{{- $sa := (index .root.Values .component).serviceAccount -}}
{{- if $sa.create -}}
{{- default (printf "%s-%s" (include "tandem.fullname" .root) .component) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/*
The gateway's gRPC target for a core pool (call with a pool context): the
pool's headless Service through the dns resolver, so the gateway sees one
address per core pod of that pool and balances with round_robin. A ClusterIP
would give it one virtual IP, and every call of a long-lived HTTP/2
connection would go to the same pod.
*/}}
{{- define "tandem.gateway.upstreamTarget" -}}
{{- printf "dns:///%s.%s.svc.%s:%d" (include "tandem.core.headlessServiceName" .) .Release.Namespace .Values.clusterDomain (int .Values.core.ports.grpc) -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: the services drain themselves on SIGTERM
(readiness false at once, keep serving for the drain delay, then finish
in-flight work within the shutdown budget), so the kubelet must wait for both
plus a margin for exiting before it sends SIGKILL.
*/}}
{{- define "tandem.gateway.terminationGracePeriodSeconds" -}}
{{- $s := .Values.gateway.settings -}}
{{- add $s.drainDelaySeconds $s.shutdownTimeoutSeconds .Values.terminationGraceMarginSeconds -}}
{{- end -}}

{{- define "tandem.core.terminationGracePeriodSeconds" -}}
{{- $s := .Values.core.settings -}}
{{- add $s.drainDelaySeconds $s.shutdownGraceSeconds .Values.terminationGraceMarginSeconds -}}
{{- end -}}

{{/*
The core's capacity plan: worker layout, CPU and memory, by the same formula
as python-inference/src/tandem/capacity.py (`tandem worker-math` prints it).
tests/chart/test_worker_math.py renders the chart for a matrix of values and
checks every number against that CLI, so a change to either side that is not
made to both fails the tests.

  whole CPUs   = max(1, ceil(cpus))
  layout       = workers given: threads = threadsPerWorker or whole / workers
                 else:          threads = threadsPerWorker or 1, workers = whole / threads
                 refused when workers x threads > whole CPUs
  model copies = 1 when threads = 1 (the workers share one ONNX Runtime session),
                 else one per worker (each needs its own intra-op thread pool),
                 + 1 when adaptiveThreads and workers > 1 (the wide session
                 lone batches run on, with workers x threads threads)
  batch arenas = workers, + 1 for the wide session
  model MiB    = ceil(weights MiB + 16)                         session overhead
  worker MiB   = ceil(maxBatchTokens x activation bytes         peak batch activations
                 per token / 1 MiB)
  The two model terms (weights, activation bytes per padded token) are measured
  by `tandem build-model` and generated into generated/model-capacity.json by
  `make chart-capacity` (`make test` fails when they drift from the manifest);
  core.capacity.weightsBytes / activationBytesPerToken override them when set.
  inflight MiB = ceil((maxInflightBytes x 10                    what admitted requests hold:
                 + maxInflightRequests x maxTextsPerRequest       text copies and tokenization,
                   x 8 KiB) / 1 MiB)                              results and responses
                 maxInflightBytes: tandem.core.maxInflightBytes (0 = 2 x the send limit)
  transit MiB  = ceil(transit calls x max request bytes x 5      raw messages of calls not
                 / 1 MiB)
                 transit calls = gateway pods (replicas, or      admitted yet or being refused
                 autoscaling.maxReplicas) x gateway maxInFlight
                 max request bytes = tandem.grpcMaxRequestBytes (_limits.tpl)
  request MiB  = 130 + copies x model + arenas x worker         130: runtime base
                 + inflight + transit
  limit MiB    = ceil(request x 1.25)                           25% headroom

Returns JSON (read it with `include ... | fromJson`): the plan, the CPU
quantity and the memory request and limit in MiB.
*/}}
{{- /* "models[<name>]: " for a pool context, so that a refusal names the pool. */ -}}
{{- define "tandem.core.where" -}}
{{- with get . "pool" }}models[{{ .name }}]: {{ end -}}
{{- end -}}

{{- define "tandem.core.maxInflightBytes" -}}
{{- /* The core's admission byte bound: core.capacity.maxInflightBytes, or (0) two of the
largest messages the gateway can send, so two largest requests are admitted at once and
batch together (a raw message is a few bytes per text larger than its text). */ -}}
{{- $given := int64 .Values.core.capacity.maxInflightBytes -}}
{{- if $given -}}{{ $given }}{{- else -}}{{ mul 2 (int64 (include "tandem.grpcMaxRequestBytes" .)) }}{{- end -}}
{{- end -}}

{{- define "tandem.core.transitCalls" -}}
{{- /* Calls that can reach one core at once: only gateways reach cores (the NetworkPolicy),
every gateway balances over every core, and each has at most maxInFlight calls open. With
autoscaling, the most pods the HPA may run. */ -}}
{{- $g := .Values.gateway -}}
{{- $pods := ternary $g.autoscaling.maxReplicas $g.replicas $g.autoscaling.enabled -}}
{{- mul (int64 $pods) (int64 $g.settings.maxInFlight) -}}
{{- end -}}

{{- /* The served graph's measured inputs, as JSON: generated/model-capacity.json's entry
for core.settings.precision (a pool context's: the pool's precision), each overridden by
its core.capacity value when that is not 0. */ -}}
{{- define "tandem.core.measured" -}}
{{- $precision := .Values.core.settings.precision -}}
{{- $generated := .Files.Get "generated/model-capacity.json" | fromJson -}}
{{- $entry := get (get $generated "precisions" | default dict) $precision -}}
{{- $c := .Values.core.capacity -}}
{{- $weights := int64 (default 0 $c.weightsBytes) -}}
{{- $activation := int64 (default 0 $c.activationBytesPerToken) -}}
{{- if and (not $entry) (not (and $weights $activation)) -}}
{{- fail (printf "generated/model-capacity.json has no %s entry (models[].precision): run 'make chart-capacity' after building that precision, or set the pool's capacity.weightsBytes and capacity.activationBytesPerToken" $precision) -}}
{{- end -}}
{{- dict
      "weightsBytes" (ternary $weights (int64 (dig "weightsBytes" 0 (default dict $entry))) (gt $weights 0))
      "activationBytesPerToken" (ternary $activation (int64 (dig "activationBytesPerToken" 0 (default dict $entry))) (gt $activation 0))
    | toJson -}}
{{- end -}}

{{- define "tandem.core.capacity" -}}
{{- $c := .Values.core.capacity -}}
{{- /* Constants of capacity.py: BASE_MIB, SESSION_OVERHEAD_MIB, HEADROOM, INFLIGHT_BYTES_FACTOR, RESULT_BYTES_PER_TEXT, TRANSIT_BYTES_FACTOR. */ -}}
{{- $baseMiB := 130 -}}
{{- $sessionOverheadMiB := 16 -}}
{{- $measured := include "tandem.core.measured" . | fromJson -}}
{{- $weightsBytes := int64 $measured.weightsBytes -}}
{{- $activationBytesPerToken := int64 $measured.activationBytesPerToken -}}
{{- $inflightBytesFactor := 10 -}}
{{- $transitBytesFactor := 4 -}}
{{- $resultBytesPerText := 8192 -}}
{{- $mib := 1048576 -}}
{{- $cpus := float64 $c.cpus -}}
{{- /* capacity.py subtracts 1e-9 before ceil so that 2.0000000001 from a cgroup quota stays 2. */ -}}
{{- $whole := max 1 (int64 (ceil (subf $cpus 0.000000001))) -}}
{{- $workers := int64 $c.workers -}}
{{- $threads := int64 $c.threadsPerWorker -}}
{{- if $workers -}}
{{- if not $threads -}}{{- $threads = max 1 (div $whole $workers) -}}{{- end -}}
{{- else -}}
{{- if not $threads -}}{{- $threads = 1 -}}{{- end -}}
{{- $workers = max 1 (div $whole $threads) -}}
{{- end -}}
{{- if gt (mul $workers $threads) $whole -}}
{{- fail (printf "%score.capacity: %d workers x %d threads = %d CPU threads, but the core gets %v CPUs (core.capacity.cpus): lower core.capacity.workers or core.capacity.threadsPerWorker, or raise core.capacity.cpus" (include "tandem.core.where" .) $workers $threads (mul $workers $threads) $c.cpus) -}}
{{- end -}}
{{- $wide := ternary 1 0 (and (default false $c.adaptiveThreads) (gt $workers 1)) -}}
{{- $copies := add (ternary 1 $workers (eq $threads 1)) $wide -}}
{{- $arenas := add $workers $wide -}}
{{- $modelMiB := int64 (ceil (addf (divf $weightsBytes $mib) $sessionOverheadMiB)) -}}
{{- /* Integer ceil(a / b) = (a + b - 1) / b: exact, no float rounding. */ -}}
{{- $perWorkerMiB := div (add (mul $c.maxBatchTokens $activationBytesPerToken) (sub $mib 1)) $mib -}}
{{- $inflightBytes := add (mul (int64 (include "tandem.core.maxInflightBytes" .)) $inflightBytesFactor) (mul (int64 $c.maxInflightRequests) (int64 $c.maxTextsPerRequest) $resultBytesPerText) -}}
{{- $inflightMiB := div (add $inflightBytes (sub $mib 1)) $mib -}}
{{- $transitBytes := mul (int64 (include "tandem.core.transitCalls" .)) (int64 (include "tandem.grpcMaxRequestBytes" .)) $transitBytesFactor -}}
{{- $transitMiB := div (add $transitBytes (sub $mib 1)) $mib -}}
{{- $requestMiB := add $baseMiB (mul $copies $modelMiB) (mul $arenas $perWorkerMiB) $inflightMiB $transitMiB -}}
{{- /* ceil(request x 1.25) = ceil(request x 5 / 4) */ -}}
{{- $limitMiB := div (add (mul $requestMiB 5) 3) 4 -}}
{{- /* CPU as millicores: "1" CPU is "1000m"; never "M" (mega) or a float that Kubernetes would round. */ -}}
{{- $cpuMillis := int64 (round (mulf $cpus 1000) 0) -}}
{{- dict
      "workers" $workers
      "threadsPerWorker" $threads
      "cpuThreads" (mul $workers $threads)
      "wideThreads" (mul $wide $workers $threads)
      "batchArenas" $arenas
      "modelCopies" $copies
      "modelMiB" $modelMiB
      "perWorkerMiB" $perWorkerMiB
      "inflightMiB" $inflightMiB
      "transitMiB" $transitMiB
      "memoryRequestMiB" $requestMiB
      "memoryLimitMiB" $limitMiB
      "cpu" (printf "%dm" $cpuMillis)
    | toJson -}}
{{- end -}}

{{/*
The core container's resources: the explicit core.resources block when one
is given, else the capacity plan (CPU request = limit = core.capacity.cpus,
so the cgroup quota the core reads is the number it planned for). An
explicit block is checked against the plan, because the core refuses to
start when its memory limit cannot hold the plan, and runs throttled when
its CPU limit is below its thread count.
*/}}
{{- define "tandem.core.resources" -}}
{{- $plan := include "tandem.core.capacity" . | fromJson -}}
{{- $explicit := .Values.core.resources -}}
{{- if $explicit -}}
{{- with (($explicit.limits | default dict).memory) -}}
{{- $limitBytes := include "tandem.bytes" (dict "quantity" . "what" "core.resources.limits.memory") | int64 -}}
{{- $needBytes := mul (int64 $plan.memoryRequestMiB) 1048576 -}}
{{- if lt $limitBytes $needBytes -}}
{{- fail (printf "%score.resources.limits.memory (%s) is below the %d MiB the core's plan needs (%d workers, maxBatchTokens %d, %d MiB in flight, %d MiB in transit); the core would refuse to start. Raise the limit, or lower core.capacity.workers, maxBatchTokens, maxInflightRequests or maxInflightBytes, or the gateway's pods x maxInFlight" (include "tandem.core.where" $) (toString .) (int64 $plan.memoryRequestMiB) (int64 $plan.workers) (int64 $.Values.core.capacity.maxBatchTokens) (int64 $plan.inflightMiB) (int64 $plan.transitMiB)) -}}
{{- end -}}
{{- end -}}
{{- with (($explicit.limits | default dict).cpu) -}}
{{- $millis := include "tandem.millicores" (dict "quantity" . "what" "core.resources.limits.cpu") | int64 -}}
{{- if lt $millis (mul (int64 $plan.cpuThreads) 1000) -}}
{{- fail (printf "%score.resources.limits.cpu (%s) is below the core's %d CPU threads (%d workers x %d threads): it would run throttled. Raise the limit or set core.capacity to match it" (include "tandem.core.where" $) (toString .) (int64 $plan.cpuThreads) (int64 $plan.workers) (int64 $plan.threadsPerWorker)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $explicit -}}
{{- else -}}
requests:
  cpu: {{ $plan.cpu }}
  memory: {{ printf "%dMi" (int64 $plan.memoryRequestMiB) }}
limits:
  cpu: {{ $plan.cpu }}
  memory: {{ printf "%dMi" (int64 $plan.memoryLimitMiB) }}
{{- end -}}
{{- end -}}
