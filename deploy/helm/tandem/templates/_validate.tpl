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
{{- $a := .Values.gateway.autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "gateway.autoscaling.minReplicas (%v) is above maxReplicas (%v)" $a.minReplicas $a.maxReplicas) -}}
{{- end -}}
{{- include "tandem.core.validatePools" . -}}
{{- range $i, $m := .Values.models -}}
{{- $ctx := dict -}}
{{- $_ := include "tandem.core.poolContext" (dict "root" $ "model" $m "index" $i "out" $ctx) -}}
{{- $a := $ctx.Values.core.autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "models[%s]: autoscaling.minReplicas (%v) is above maxReplicas (%v) (core.autoscaling with the pool's overrides)" $m.name $a.minReplicas $a.maxReplicas) -}}
{{- end -}}
{{- /* Renders each pool's plan once so that a refused layout fails even with explicit resources. */ -}}
{{- $_ := include "tandem.core.capacity" $ctx -}}
{{- end -}}
{{- if .Values.tracing.enabled -}}
{{- $_ := include "tandem.tracing.endpoint" . -}}
{{- end -}}
{{- end -}}
