{{/*
A core pool's settings (call with a pool context, _pools.tpl): the ConfigMap
data of core-configmap.yaml, and what its Deployment's checksum hashes, so a
change to one pool's settings rolls that pool only.
*/}}
{{- define "tandem.core.configData" -}}
{{- $plan := include "tandem.core.capacity" . | fromJson -}}
{{- $s := .Values.core.settings -}}
TANDEM_CORE_GRPC_HOST: "0.0.0.0"
TANDEM_CORE_GRPC_PORT: {{ .Values.core.ports.grpc | int | quote }}
TANDEM_CORE_HTTP_HOST: "0.0.0.0"
TANDEM_CORE_HTTP_PORT: {{ .Values.core.ports.http | int | quote }}
# /metrics on its own port (on the HTTP address), apart from /v1/embed.
TANDEM_CORE_METRICS_PORT: {{ .Values.core.ports.metrics | int | quote }}
# Built into the image at build time; start-up only loads it.
TANDEM_CORE_MODEL_DIR: /opt/tandem/model
TANDEM_CORE_PRECISION: {{ $s.precision | quote }}
# The worker layout of the capacity plan (_helpers.tpl, tandem.core.capacity),
# the same plan the pod's CPU and memory come from. Set explicitly so the
# core runs exactly what the chart sized the pod for.
TANDEM_CORE_CPUS: {{ .Values.core.capacity.cpus | toString | quote }}
TANDEM_CORE_WORKERS: {{ $plan.workers | int | quote }}
TANDEM_CORE_THREADS_PER_WORKER: {{ $plan.threadsPerWorker | int | quote }}
TANDEM_CORE_ADAPTIVE_THREADS: {{ gt (int $plan.wideThreads) 0 | quote }}
TANDEM_CORE_MAX_BATCH_TOKENS: {{ .Values.core.capacity.maxBatchTokens | int | quote }}
TANDEM_CORE_MAX_INFLIGHT_REQUESTS: {{ .Values.core.capacity.maxInflightRequests | int | quote }}
TANDEM_CORE_MAX_INFLIGHT_BYTES: {{ include "tandem.core.maxInflightBytes" . | quote }}
# Gateway pods x the gateway's maxInFlight: the calls in transit the plan holds.
TANDEM_CORE_TRANSIT_CALLS: {{ include "tandem.core.transitCalls" . | quote }}
TANDEM_CORE_MAX_TEXTS_PER_REQUEST: {{ .Values.core.capacity.maxTextsPerRequest | int | quote }}
# requestLimits, as the gateway gets them; the gRPC receive limit is the
# largest message the gateway can send within them (_limits.tpl).
TANDEM_CORE_MAX_TEXT_BYTES: {{ .Values.requestLimits.maxTextBytes | int | quote }}
TANDEM_CORE_MAX_REQUEST_BYTES: {{ include "tandem.grpcMaxRequestBytes" . | quote }}
TANDEM_CORE_MAX_BATCH_SIZE: {{ $s.maxBatchSize | int | quote }}
TANDEM_CORE_DRAIN_DELAY_S: {{ $s.drainDelaySeconds | int | quote }}
TANDEM_CORE_SHUTDOWN_GRACE_S: {{ $s.shutdownGraceSeconds | int | quote }}
TANDEM_CORE_LOG_LEVEL: {{ $s.logLevel | quote }}
{{- range $name, $value := .Values.core.extraSettings }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end -}}
