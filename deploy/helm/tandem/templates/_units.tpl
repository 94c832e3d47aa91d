{{/*
Kubernetes quantities read as numbers. Quantity suffixes are a classic trap:
"128M" is 10^6 bytes x 128, "128Mi" is 2^20 x 128, and "128m" is 0.128
bytes (milli), which Kubernetes accepts for memory without complaint. These
helpers accept the forms the chart needs, refuse "m" for memory, and fail
with the value's name on anything else. tests/chart/test_units.py covers
each suffix.
*/}}

{{/*
Memory quantity -> whole bytes, rounded up like Kubernetes does.
Call with (dict "quantity" "128Mi" "what" "gateway.resources.limits.memory").
*/}}
{{- define "tandem.bytes" -}}
{{- $q := .quantity -}}
{{- if or (kindIs "float64" $q) (kindIs "int64" $q) (kindIs "int" $q) -}}
{{- printf "%d" (int64 (ceil (float64 $q))) -}}
{{- else -}}
{{- $s := toString $q | trim -}}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?m$" $s -}}
{{- fail (printf "%s: %q is in millibytes (the m suffix); for memory write Mi (mebibytes, 2^20) or M (megabytes, 10^6)" .what $s) -}}
{{- end -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$" $s) -}}
{{- fail (printf "%s: %q is not a memory quantity this chart can read; write bytes, or a number with Ki, Mi, Gi, Ti (binary) or k, M, G, T (decimal)" .what $s) -}}
{{- end -}}
{{- $number := regexReplaceAll "^([0-9.]+).*$" $s "${1}" -}}
{{- $suffix := regexReplaceAll "^[0-9.]+" $s "" -}}
{{- $factor := get (dict
      "" 1
      "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "P" 1000000000000000 "E" 1000000000000000000
      "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976
    ) $suffix -}}
{{- printf "%d" (int64 (ceil (mulf $number $factor))) -}}
{{- end -}}
{{- end -}}

{{/*
CPU quantity -> millicores ("500m" -> 500, "2" -> 2000, 1.5 -> 1500).
Call with (dict "quantity" "500m" "what" "core.resources.limits.cpu").
*/}}
{{- define "tandem.millicores" -}}
{{- $q := .quantity -}}
{{- if or (kindIs "float64" $q) (kindIs "int64" $q) (kindIs "int" $q) -}}
{{- printf "%d" (int64 (round (mulf $q 1000) 0)) -}}
{{- else -}}
{{- $s := toString $q | trim -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?m?$" $s) -}}
{{- fail (printf "%s: %q is not a CPU quantity this chart can read; write cores (\"2\", \"1.5\") or millicores (\"500m\")" .what $s) -}}
{{- end -}}
{{- if hasSuffix "m" $s -}}
{{- printf "%d" (int64 (ceil (float64 (trimSuffix "m" $s)))) -}}
{{- else -}}
{{- printf "%d" (int64 (round (mulf $s 1000) 0)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
GOMEMLIMIT for a Go container: a share of its memory limit, in bytes (Go
reads a plain number as bytes, so no suffix can be misread). The Go runtime
then collects garbage harder as the heap nears the limit instead of growing
into the kernel's OOM kill; the rest of the limit is left for what the Go
runtime does not count (e.g. the binary's mapped pages). Empty when the
container has no memory limit: there is nothing to derive it from.
Call with (dict "resources" .Values.gateway.resources "ratio" 0.9 "what" "gateway").
*/}}
{{- define "tandem.gomemlimit" -}}
{{- with ((.resources | default dict).limits | default dict).memory -}}
{{- $bytes := include "tandem.bytes" (dict "quantity" . "what" (printf "%s.resources.limits.memory" $.what)) -}}
{{- printf "%d" (int64 (floor (mulf $bytes $.ratio))) -}}
{{- end -}}
{{- end -}}
