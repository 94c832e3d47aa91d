{{/*
The gRPC message limits, one formula for both ends (docs/gateway.md,
"Message sizes"; go-gateway/internal/upstream/msgsize.go computes the same):

  max request bytes = min(maxTexts x maxTextBytes, maxBodyBytes)
                      + maxTexts x (1 + varint size of maxTextBytes) + 1024

It is the largest EmbedRequest the gateway can send for a request within its
limits, so the core's receive limit (TANDEM_CORE_MAX_REQUEST_BYTES, applied as
grpc.max_receive_message_length) is set to it: every valid request fits, and
nothing larger is accepted. tests/chart/test_message_limits.py pins the
arithmetic to the Go function's numbers.
*/}}
{{- define "tandem.maxTexts" -}}
{{- .Values.core.capacity.maxTextsPerRequest | int -}}
{{- end -}}

{{- define "tandem.grpcMaxRequestBytes" -}}
{{- $l := .Values.requestLimits -}}
{{- $texts := int64 (include "tandem.maxTexts" .) -}}
{{- $textBytes := int64 $l.maxTextBytes -}}
{{- $varint := 4 -}}
{{- if lt $textBytes 128 }}{{ $varint = 1 }}{{ else if lt $textBytes 16384 }}{{ $varint = 2 }}{{ else if lt $textBytes 2097152 }}{{ $varint = 3 }}{{ end -}}
{{- $payload := min (mul $texts $textBytes) (int64 $l.maxBodyBytes) -}}
{{- add $payload (mul $texts (add 1 $varint)) 1024 -}}
{{- end -}}
