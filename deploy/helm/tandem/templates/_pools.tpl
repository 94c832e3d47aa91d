{{/*
The core pools: one per entry of `models`, each a Deployment with its own
Services, ConfigMap, worker math, HPA and PDB, serving one model.

A pool is rendered with a context of its own that looks like the chart's root
(.Values, .Release, .Chart, .Files, ...) except that .Values.core is the
pool's merged settings: the shared core.* defaults with the entry's overrides
on top, and core.settings.precision set to the entry's precision. Every core
helper (worker math, resources, grace period, names, labels) therefore works
on a pool unchanged, and the pool's capacity plan reads the generated
capacity entry of its own precision. The context also carries .pool:
{name, precision, modelId, primary, index}.

Use it as:
  {{- range $i, $m := .Values.models }}
  {{- $ctx := dict }}
  {{- $_ := include "tandem.core.poolContext" (dict "root" $ "model" $m "index" $i "out" $ctx) }}
  ... include "tandem.core.fullname" $ctx ...
  {{- end }}
*/}}
{{- define "tandem.core.poolContext" -}}
{{- $root := .root -}}
{{- $m := .model -}}
{{- $core := deepCopy $root.Values.core -}}
{{- $_ := include "tandem.mergeInto" (dict "dst" $core "src" (omit $m "name" "precision" "modelId")) -}}
{{- $_ := set $core.settings "precision" $m.precision -}}
{{- $values := dict -}}
{{- range $k, $v := $root.Values -}}
{{- $_ := set $values $k $v -}}
{{- end -}}
{{- $_ := set $values "core" $core -}}
{{- $out := .out -}}
{{- range $k := list "Chart" "Release" "Files" "Capabilities" "Template" -}}
{{- $_ := set $out $k (get $root $k) -}}
{{- end -}}
{{- $_ := set $out "Values" $values -}}
{{- $_ := set $out "pool" (dict
      "name" $m.name
      "precision" $m.precision
      "modelId" (include "tandem.core.modelId" (dict "root" $root "model" $m))
      "primary" (eq (int .index) 0)
      "index" (int .index)) -}}
{{- end -}}

{{/*
Deep merge of an override into a copy of the shared values, in place: maps
merge key by key, anything else (numbers, booleans, lists) is replaced, and
so is a resources block (a pool's explicit resources are the whole block,
not requests added to the shared limits). Written out because sprig's
mergeOverwrite skips "empty" values: a pool's `workers: 0` or
`autoscaling.enabled: false` would silently keep the shared setting.
*/}}
{{- define "tandem.mergeInto" -}}
{{- $dst := .dst -}}
{{- range $k, $v := .src -}}
{{- $current := get $dst $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $current) (ne $k "resources") -}}
{{- $_ := include "tandem.mergeInto" (dict "dst" $current "src" $v) -}}
{{- else -}}
{{- $_ := set $dst $k (deepCopy $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The model id the gateway routes to a pool: the entry's modelId, else the id
its cores serve. A core serves its manifest's name, suffixed "-<precision>"
for every precision but fp32 (python-inference, tandem.model.manifest
served_name): "all-MiniLM-L6-v2" and "all-MiniLM-L6-v2-int8". The name is the
last part of the generated file's modelId ("sentence-transformers/
all-MiniLM-L6-v2"), the alias clients send. Call with (dict "root" $ "model" <entry>).
*/}}
{{- define "tandem.core.modelId" -}}
{{- if .model.modelId -}}
{{- .model.modelId -}}
{{- else -}}
{{- $generated := .root.Files.Get "generated/model-capacity.json" | fromJson -}}
{{- $name := last (splitList "/" (get $generated "modelId" | default "")) -}}
{{- if not $name -}}
{{- fail (printf "models[%s]: generated/model-capacity.json names no model: run 'make chart-capacity', or set the entry's modelId" .model.name) -}}
{{- end -}}
{{- ternary $name (printf "%s-%s" $name .model.precision) (eq .model.precision "fp32") -}}
{{- end -}}
{{- end -}}

{{/*
The gateway's pools, TANDEM_GATEWAY_UPSTREAM_POOLS: "<model id>=<target>"
pairs, comma-separated, each target a pool's headless Service through the dns
resolver (tandem.gateway.upstreamTarget).
*/}}
{{- define "tandem.gateway.upstreamPools" -}}
{{- $pairs := list -}}
{{- range $i, $m := .Values.models -}}
{{- $ctx := dict -}}
{{- $_ := include "tandem.core.poolContext" (dict "root" $ "model" $m "index" $i "out" $ctx) -}}
{{- $pairs = append $pairs (printf "%s=%s" $ctx.pool.modelId (include "tandem.gateway.upstreamTarget" $ctx)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
"true" when any pool autoscales with KEDA (core.autoscaling with the pool's
overrides: enabled, mode keda), else empty.
*/}}
{{- define "tandem.core.anyKeda" -}}
{{- range $i, $m := .Values.models -}}
{{- $ctx := dict -}}
{{- $_ := include "tandem.core.poolContext" (dict "root" $ "model" $m "index" $i "out" $ctx) -}}
{{- $a := $ctx.Values.core.autoscaling -}}
{{- if and $a.enabled (eq $a.mode "keda") -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Checks across pools the schema cannot express: names and model ids are
unique (each names objects, and the gateway routes each model to one pool).
*/}}
{{- define "tandem.core.validatePools" -}}
{{- $names := dict -}}
{{- $ids := dict -}}
{{- range $i, $m := .Values.models -}}
{{- if hasKey $names $m.name -}}
{{- fail (printf "models: two entries are named %q; each pool needs its own name (it names the pool's objects)" $m.name) -}}
{{- end -}}
{{- $_ := set $names $m.name true -}}
{{- $id := include "tandem.core.modelId" (dict "root" $ "model" $m) -}}
{{- if hasKey $ids $id -}}
{{- fail (printf "models: %q and %q both serve model %q; the gateway routes a model to one pool (set modelId, or drop one)" (get $ids $id) $m.name $id) -}}
{{- end -}}
{{- $_ := set $ids $id $m.name -}}
{{- end -}}
{{- end -}}

{{/* Every pool's model id, comma-separated (the helm test asks each). */}}
{{- define "tandem.helmTest.models" -}}
{{- $ids := list -}}
{{- range .Values.models -}}
{{- $ids = append $ids (include "tandem.core.modelId" (dict "root" $ "model" .)) -}}
{{- end -}}
{{- join "," $ids -}}
{{- end -}}
