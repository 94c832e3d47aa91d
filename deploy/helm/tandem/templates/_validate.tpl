{{/*
Checks across values that the JSON schema cannot express. Each one would
otherwise surface later as a pod that refuses to start. Rendered (with no
output) from gateway-configmap.yaml, which every install contains.
*/}}
{{- define "tandem.validate" -}}
{{- $gw := .Values.gateway.settings -}}
{{- if lt (int $gw.shutdownTimeoutSeconds) (int $gw.requestTimeoutSeconds) -}}
{{- fail (printf "gateway.settings.shutdownTimeoutSeconds (%v) must be at least requestTimeoutSeconds (%v), so that requests in flight at shutdown can finish (the gateway refuses to start otherwise)" $gw.shutdownTimeoutSeconds $gw.requestTimeoutSeconds) -}}
{{- end -}}
{{- range $component := list "gateway" "core" -}}
{{- $a := (index $.Values $component).autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%v) is above maxReplicas (%v)" $component $a.minReplicas $a.maxReplicas) -}}
{{- end -}}
{{- end -}}
{{- /* Renders the plan once so that a refused layout fails even with explicit resources. */ -}}
{{- $_ := include "tandem.core.capacity" . -}}
{{- if .Values.tracing.enabled -}}
{{- $_ := include "tandem.tracing.endpoint" . -}}
{{- end -}}
{{- end -}}
