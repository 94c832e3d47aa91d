package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
)

func TestRecordsCarryTheTraceAndSpanIDFromTheContext(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&buf, slog.LevelInfo).With("component", "test")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	})
	ctx := trace.ContextWithSpanContext(requestid.NewContext(t.Context(), "req-8"), sc)

	logger.InfoContext(ctx, "hello")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, buf.String())
	}
	if line["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || line["span_id"] != "00f067aa0ba902b7" ||
		line["request_id"] != "req-8" || line["component"] != "test" {
		t.Errorf("line = %v", line)
	}

	// No span (tracing off, or a line about the process): no ids, rather
	// than ids of zeros.
	buf.Reset()
	logger.InfoContext(requestid.NewContext(t.Context(), "req-9"), "untraced")
	if bytes.Contains(buf.Bytes(), []byte("trace_id")) || bytes.Contains(buf.Bytes(), []byte("span_id")) {
		t.Errorf("line without a span has trace ids: %s", buf.String())
	}
}
