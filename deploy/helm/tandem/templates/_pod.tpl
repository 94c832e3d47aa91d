{{/*
Pod spec parts the gateway and the core share. Call each with
(dict "root" $ "component" "gateway"|"core").
*/}}

{{/*
Scheduling. A spread constraint without a labelSelector gets the
component's own, and matchLabelKeys pod-template-hash so that during a
rollout the new ReplicaSet's pods are spread among themselves.
*/}}
{{- define "tandem.podScheduling" -}}
{{- $v := index .root.Values .component -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- range $v.topologySpreadConstraints }}
  {{- $constraint := deepCopy . }}
  {{- if not (hasKey $constraint "labelSelector") }}
  {{- $_ := set $constraint "labelSelector" (dict "matchLabels" (include "tandem.selectorLabels" $ | fromYaml)) }}
  {{- end }}
  {{- if not (hasKey $constraint "matchLabelKeys") }}
  {{- $_ := set $constraint "matchLabelKeys" (list "pod-template-hash") }}
  {{- end }}
  - {{- toYaml $constraint | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
What every pod of the chart has: no API token (none of them talks to the
Kubernetes API), and no Service environment variables. The kubelet would
otherwise inject TANDEM_CORE_PORT=tcp://..., TANDEM_GATEWAY_SERVICE_HOST=...
for the chart's own Services, right inside the TANDEM_CORE_* and
TANDEM_GATEWAY_* namespaces the services read their settings from.
*/}}
{{- define "tandem.podBasics" -}}
automountServiceAccountToken: false
enableServiceLinks: false
{{- end -}}

{{/*
Security contexts of the optional tracing pods (collector, Jaeger), which
have no values of their own for it: Pod Security "restricted" with the
image's numeric user. Call with the user id.
*/}}
{{- define "tandem.restrictedPodSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tandem.restrictedContainerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
