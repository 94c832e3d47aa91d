{{/*
OpenTelemetry: the standard OTEL_* variables both services read (the gateway
in go-gateway/internal/telemetry, the core in tandem/ops/telemetry.py). Both
export OTLP over gRPC; tracing stays off unless an endpoint is set.
*/}}

{{/*
Where spans go: tracing.otlpEndpoint when given, else the chart's own
collector, else the chart's Jaeger (which takes OTLP directly).
*/}}
{{- define "tandem.tracing.endpoint" -}}
{{- $t := .Values.tracing -}}
{{- if $t.otlpEndpoint -}}
{{- $t.otlpEndpoint -}}
{{- else if $t.collector.enabled -}}
{{- printf "http://%s-otel-collector.%s.svc:4317" (include "tandem.fullname" .) .Release.Namespace -}}
{{- else if $t.jaeger.enabled -}}
{{- printf "http://%s-jaeger.%s.svc:4317" (include "tandem.fullname" .) .Release.Namespace -}}
{{- else -}}
{{- fail "tracing.enabled needs somewhere to send spans: set tracing.otlpEndpoint, or tracing.collector.enabled or tracing.jaeger.enabled" -}}
{{- end -}}
{{- end -}}

{{/*
The env entries of a traced container. Call with
(dict "root" $ "serviceName" "tandem-gateway"). The pod name and namespace
come from the downward API and are declared first, because $(VAR)
references only see variables listed before them.
*/}}
{{- define "tandem.tracing.env" -}}
{{- $t := .root.Values.tracing -}}
{{- if $t.enabled -}}
{{- $attributes := list "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.pod.name=$(K8S_POD_NAME)" (printf "service.version=%s" .root.Chart.AppVersion) -}}
{{- range $key := keys $t.resourceAttributes | sortAlpha -}}
{{- $attributes = append $attributes (printf "%s=%s" $key (get $t.resourceAttributes $key)) -}}
{{- end -}}
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_SERVICE_NAME
  value: {{ .serviceName }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ include "tandem.tracing.endpoint" .root | quote }}
# The gateway is the edge and decides; the core follows the sampled flag of
# the gateway's traceparent, so a trace is kept or dropped whole.
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $t.samplerRatio | toString | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- end -}}
{{- end -}}

{{/*
The collector's configuration (tracing-collector.yaml): OTLP/gRPC in, a
memory limiter and batching, then Jaeger when the chart runs one, else the
debug exporter (one log line per batch).
*/}}
{{- define "tandem.tracing.collectorConfig" -}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
processors:
  # Refuse data before the container limit is reached, not after.
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch: {}
exporters:
  {{- if .Values.tracing.jaeger.enabled }}
  otlp/jaeger:
    endpoint: {{ include "tandem.fullname" . }}-jaeger.{{ .Release.Namespace }}.svc:4317
    tls:
      insecure: true
  {{- else }}
  debug:
    verbosity: basic
  {{- end }}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [{{ ternary "otlp/jaeger" "debug" .Values.tracing.jaeger.enabled }}]
{{- end -}}
