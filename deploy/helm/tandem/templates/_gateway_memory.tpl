{{/*
The gateway's memory plan, by the same formula as go-gateway/internal/memplan
(`tandem-gateway memory-plan` prints it; docs/gateway.md, "Memory").
tests/chart/test_gateway_memory.py renders the chart for a matrix of values
and checks every number against that command, so a change to either side
that is not made to both fails the tests.

  memory      = base + maxInFlight x per request
  per request = 2 x maxBodyBytes                          body (chunked: doubling)
              + texts                                     decoded texts
              + texts + maxInputs x 8                     protobuf request
              + maxInputs x dimension x 8                 protobuf answer + floats
              + 3 x maxInputs x (dimension x 18 + 128)    JSON response
              + overhead
    texts     = min(maxInputs x maxTextBytes, maxBodyBytes)
    dimension = TANDEM_GATEWAY_UPSTREAM_MAX_DIMENSION (gateway.extraSettings),
                the widest answer the gateway accepts; the binary's default
                is 1024
  request MiB = ceil(memory / 1 MiB)
  limit MiB   = ceil(memory / goMemLimitRatio / 1 MiB)    integer: ratio as percent
  GOMEMLIMIT  = limit x goMemLimitRatio                    >= memory

Returns JSON with the field names of memplan.Plan.
*/}}
{{- define "tandem.gateway.memory" -}}
{{- $v := .Values.gateway -}}
{{- $l := .Values.requestLimits -}}
{{- /* Constants of memplan.go: BaseBytes, PerRequestOverheadBytes, ProtoBytesPerText, BytesPerFloat, JSONBytesPerFloat, JSONBytesPerEmbedding, JSONBufferFactor. */ -}}
{{- $baseBytes := 33554432 -}}
{{- $overheadBytes := 65536 -}}
{{- $protoBytesPerText := 8 -}}
{{- $bytesPerFloat := 8 -}}
{{- $jsonBytesPerFloat := 18 -}}
{{- $jsonBytesPerEmbedding := 128 -}}
{{- $jsonBufferFactor := 3 -}}
{{- $defaultDimension := 1024 -}}
{{- $mib := 1048576 -}}
{{- $inFlight := int64 $v.settings.maxInFlight -}}
{{- if eq $inFlight 0 -}}
{{- fail "gateway.settings.maxInFlight is 0 (no cap): then nothing bounds the gateway's memory, and no memory limit is safe. Set a cap (docs/gateway.md, \"Memory\")" -}}
{{- end -}}
{{- $body := int64 $l.maxBodyBytes -}}
{{- $inputs := int64 (include "tandem.maxTexts" .) -}}
{{- $textBytes := int64 $l.maxTextBytes -}}
{{- $dim := int64 (index ($v.extraSettings | default dict) "TANDEM_GATEWAY_UPSTREAM_MAX_DIMENSION" | default $defaultDimension) -}}
{{- $texts := min (mul $inputs $textBytes) $body -}}
{{- $bodyTerm := mul 2 $body -}}
{{- $upstream := add $texts (mul $inputs $protoBytesPerText) -}}
{{- $response := add (mul $inputs $dim $bytesPerFloat) (mul $jsonBufferFactor $inputs (add (mul $dim $jsonBytesPerFloat) $jsonBytesPerEmbedding)) -}}
{{- $perRequest := add $bodyTerm $texts $upstream $response $overheadBytes -}}
{{- $total := add $baseBytes (mul $inFlight $perRequest) -}}
{{- $percent := int64 (round (mulf $v.goMemLimitRatio 100) 0) -}}
{{- /* Integer ceil(a / b) = (a + b - 1) / b: exact, no float rounding. */ -}}
{{- $requestMiB := div (add $total (sub $mib 1)) $mib -}}
{{- $limitDivisor := mul $percent $mib -}}
{{- $limitMiB := div (add (mul $total 100) (sub $limitDivisor 1)) $limitDivisor -}}
{{- dict
      "base_bytes" $baseBytes
      "body_bytes" $bodyTerm
      "text_bytes" $texts
      "upstream_bytes" $upstream
      "response_bytes" $response
      "overhead_bytes" $overheadBytes
      "per_request_bytes" $perRequest
      "total_bytes" $total
      "memory_request_mib" $requestMiB
      "memory_limit_mib" $limitMiB
      "gomemlimit_bytes" (div (mul $limitMiB $mib $percent) 100)
      "gomemlimit_ratio_percent" $percent
      "dimension" $dim
    | toJson -}}
{{- end -}}

{{/*
The gateway container's resources: the explicit gateway.resources block when
one is given, else the memory plan (request = the plan, limit = the plan over
goMemLimitRatio, CPU request gateway.cpuRequest, no CPU limit). An explicit
memory limit is checked against the plan: its GOMEMLIMIT share must hold
what maxInFlight requests can hold at once, or the pod could be OOM-killed
by one client.
*/}}
{{- define "tandem.gateway.resources" -}}
{{- $plan := include "tandem.gateway.memory" . | fromJson -}}
{{- $v := .Values.gateway -}}
{{- if $v.resources -}}
{{- with (($v.resources.limits | default dict).memory) -}}
{{- $limitBytes := include "tandem.bytes" (dict "quantity" . "what" "gateway.resources.limits.memory") | int64 -}}
{{- $needBytes := int64 $plan.total_bytes -}}
{{- if lt (div (mul $limitBytes (int64 $plan.gomemlimit_ratio_percent)) 100) $needBytes -}}
{{- fail (printf "gateway.resources.limits.memory (%s) cannot hold the gateway's memory plan: %v of it (GOMEMLIMIT) must cover %d MiB = 32 MiB + maxInFlight %d x %.1f MiB per request (docs/gateway.md, \"Memory\"). Raise the limit to at least %dMi, or lower gateway.settings.maxInFlight or requestLimits" (toString .) $v.goMemLimitRatio (int64 $plan.memory_request_mib) (int64 $v.settings.maxInFlight) (divf $plan.per_request_bytes 1048576) (int64 $plan.memory_limit_mib)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $v.resources -}}
{{- else -}}
requests:
  cpu: {{ $v.cpuRequest }}
  memory: {{ printf "%dMi" (int64 $plan.memory_request_mib) }}
limits:
  memory: {{ printf "%dMi" (int64 $plan.memory_limit_mib) }}
{{- end -}}
{{- end -}}
