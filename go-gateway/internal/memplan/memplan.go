// Package memplan is the gateway's memory formula: what the process can hold
// at most, from the settings that bound it. It is the gateway's counterpart
// of the core's worker math (python-inference/src/tandem/capacity.py).
// `tandem-gateway -print-memory-plan` prints it, the Helm chart derives the
// gateway's memory limit and GOMEMLIMIT from the same formula
// (deploy/helm/tandem/templates/_helpers.tpl, tandem.gateway.memory), and
// tests/chart/test_gateway_memory.py checks that the two agree.
//
//	memory      = base + max-in-flight x per request
//	per request = body + texts + upstream + response + overhead
//	  body      = 2 x max-body-bytes        read buffer; doubling when chunked
//	  texts     = min(max-inputs x max-text-bytes, max-body-bytes)   decoded
//	  upstream  = texts + max-inputs x 8    the protobuf EmbedRequest
//	  response  = max-inputs x dimension x 8          protobuf + []float32
//	              (dimension: upstream-max-dimension, the widest answer
//	              the gateway accepts from a core)
//	            + 3 x max-inputs x (dimension x 18 + 128)   JSON, built in a
//	              growing buffer (2x) and copied out (1x)
//	  overhead  = PerRequestOverheadBytes   goroutine, connection buffers, ...
//	limit       = ceil(memory / GOMEMLIMIT ratio), in MiB
//	GOMEMLIMIT  = floor(limit x ratio)
//
// Decoding allocates in proportion to what these limits admit, never to
// what a client sends (internal/httpapi/decode.go), and a request holds its
// in-flight slot before its body is read, so max-in-flight bounds how many
// of these exist at once.
package memplan

import (
	"errors"
	"fmt"
	"math"
)

// Constants of the formula. BaseBytes and PerRequestOverheadBytes are
// measured by tests/e2e/test_abuse.py against a real gateway (idle RSS, and
// RSS per in-flight request held while its body is read); the tests fail
// when a change makes either larger. The chart repeats these numbers, and
// tests/chart/test_gateway_memory.py fails when they differ.
const (
	// BaseBytes is the RSS of an idle gateway (measured: about 20 MiB),
	// with room for the Go runtime's own structures.
	BaseBytes = 32 << 20
	// PerRequestOverheadBytes is what one in-flight request costs besides
	// its data: a goroutine stack, net/http's connection buffers, the
	// request, context, span and gRPC stream (measured: under 40 KiB).
	PerRequestOverheadBytes = 64 << 10
	// ProtoBytesPerText bounds the protobuf framing of one text (field tag
	// and length) in the upstream request.
	ProtoBytesPerText = 8
	// BytesPerFloat is a float32 in the protobuf answer and again in the
	// decoded []float32.
	BytesPerFloat = 2 * 4
	// JSONBytesPerFloat bounds one vector component as JSON text: the
	// longest shortest-round-trip form of a float32 of magnitude below 1
	// (the core returns unit vectors), "-0.000001234567891", and a comma.
	// base64 takes 5.3 bytes per float, so this covers both encodings.
	JSONBytesPerFloat = 18
	// JSONBytesPerEmbedding bounds the rest of one embedding object:
	// {"object":"embedding","index":255,"embedding":[...],"truncated":true}.
	JSONBytesPerEmbedding = 128
	// JSONBufferFactor is how many copies of the response JSON are alive
	// at the peak: encoding/json's buffer at up to twice the final size
	// while it grows, plus the final copy it returns.
	JSONBufferFactor = 3
	// DefaultGoMemLimitRatio is GOMEMLIMIT's share of the memory limit; the
	// rest is for what the Go runtime does not count and for GC lag.
	DefaultGoMemLimitRatio = 0.9
)

const mib = 1 << 20

// Inputs are the settings the plan depends on.
type Inputs struct {
	MaxInFlight  int     `json:"max_in_flight"`
	MaxBodyBytes int64   `json:"max_body_bytes"`
	MaxInputs    int     `json:"max_inputs"`
	MaxTextBytes int     `json:"max_text_bytes"`
	Dimension    int     `json:"dimension"`
	GoMemRatio   float64 `json:"gomemlimit_ratio"`
}

// Plan is the formula worked out, every term in bytes unless named MiB.
type Plan struct {
	Inputs           Inputs `json:"inputs"`
	BaseBytes        int64  `json:"base_bytes"`
	BodyBytes        int64  `json:"body_bytes"`
	TextBytes        int64  `json:"text_bytes"`
	UpstreamBytes    int64  `json:"upstream_bytes"`
	ResponseBytes    int64  `json:"response_bytes"`
	OverheadBytes    int64  `json:"overhead_bytes"`
	PerRequestBytes  int64  `json:"per_request_bytes"`
	TotalBytes       int64  `json:"total_bytes"`
	MemoryRequestMiB int64  `json:"memory_request_mib"`
	MemoryLimitMiB   int64  `json:"memory_limit_mib"`
	GoMemLimitBytes  int64  `json:"gomemlimit_bytes"`
	RatioPercent     int64  `json:"gomemlimit_ratio_percent"`
}

// ErrUnbounded is returned for max-in-flight 0 (no cap): then nothing
// bounds the number of requests held at once, and no limit is safe.
var ErrUnbounded = errors.New("max-in-flight is 0 (no cap): the gateway's memory has no bound; set max-in-flight")

// Compute works out the plan. The arithmetic is in integers (the ratio as
// whole percent), so the chart's template gets exactly the same numbers.
func Compute(in Inputs) (Plan, error) {
	switch {
	case in.MaxInFlight == 0:
		return Plan{}, ErrUnbounded
	case in.MaxInFlight < 0 || in.MaxBodyBytes < 1 || in.MaxInputs < 1 || in.MaxTextBytes < 1 || in.Dimension < 1:
		return Plan{}, fmt.Errorf("memory plan: every input must be positive: %+v", in)
	case in.GoMemRatio <= 0 || in.GoMemRatio > 1:
		return Plan{}, fmt.Errorf("memory plan: GOMEMLIMIT ratio %v must be in (0, 1]", in.GoMemRatio)
	}
	p := Plan{Inputs: in, BaseBytes: BaseBytes, OverheadBytes: PerRequestOverheadBytes}
	inputs, dim := int64(in.MaxInputs), int64(in.Dimension)
	p.BodyBytes = 2 * in.MaxBodyBytes
	p.TextBytes = min(inputs*int64(in.MaxTextBytes), in.MaxBodyBytes)
	p.UpstreamBytes = p.TextBytes + inputs*ProtoBytesPerText
	p.ResponseBytes = inputs*dim*BytesPerFloat + JSONBufferFactor*inputs*(dim*JSONBytesPerFloat+JSONBytesPerEmbedding)
	p.PerRequestBytes = p.BodyBytes + p.TextBytes + p.UpstreamBytes + p.ResponseBytes + p.OverheadBytes
	p.TotalBytes = p.BaseBytes + int64(in.MaxInFlight)*p.PerRequestBytes

	p.RatioPercent = int64(math.Round(in.GoMemRatio * 100))
	p.MemoryRequestMiB = ceilDiv(p.TotalBytes, mib)
	// limit = ceil(total / ratio) in MiB = ceil(total x 100 / (percent x MiB))
	p.MemoryLimitMiB = ceilDiv(p.TotalBytes*100, p.RatioPercent*mib)
	p.GoMemLimitBytes = p.MemoryLimitMiB * mib * p.RatioPercent / 100
	return p, nil
}

// Fits reports whether an explicit memory limit (in bytes) can hold the
// plan: its GOMEMLIMIT share must cover the plan's total.
func (p Plan) Fits(limitBytes int64) bool {
	return limitBytes*p.RatioPercent/100 >= p.TotalBytes
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
