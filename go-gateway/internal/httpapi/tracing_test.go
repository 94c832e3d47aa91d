package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tandem-inference/tandem/go-gateway/internal/auth"
	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// A client's trace context, as a traceparent header would carry it.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
)

const (
	embeddingsSpan = "POST /v1/embeddings"
	embedRPCSpan   = "tandem.contract.v1.EmbeddingService/Embed"
	modelRPCSpan   = "tandem.contract.v1.EmbeddingService/GetModelInfo"
)

// newTestTracing traces into memory. The provider has the SDK's default
// sampler, parentbased_always_on, which is also the gateway's default. Spans
// are exported as they end, so they are there once ServeHTTP returns.
func newTestTracing(t *testing.T) (telemetry.Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return telemetry.Tracing{Provider: tp, Propagator: telemetry.NewPropagator()}, exporter
}

func TestTracedRequestIsOneTraceFromHTTPToTheCore(t *testing.T) {
	core := fakecore.Start(t)
	tracing, exporter := newTestTracing(t)
	s := newTracedIntegrationServer(t, core.Addr, 5*time.Second, tracing)

	rec := s.postJSON(`{"model":"all-MiniLM-L6-v2","input":["hello world","good bye now"],"encoding_format":"base64"}`,
		requestid.Header, "tr-1")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}

	spans := exporter.GetSpans()
	server, embed, info := findSpan(t, spans, embeddingsSpan), findSpan(t, spans, embedRPCSpan), findSpan(t, spans, modelRPCSpan)
	if len(spans) != 3 {
		t.Errorf("spans = %v, want the server span and two client spans", spanNames(spans))
	}
	traceID := server.SpanContext.TraceID()
	if server.SpanKind != trace.SpanKindServer || server.Parent.IsValid() {
		t.Errorf("server span: kind %v, parent %v; want a root server span", server.SpanKind, server.Parent.SpanID())
	}
	for _, child := range []*tracetest.SpanStub{embed, info} {
		if child.SpanKind != trace.SpanKindClient || child.SpanContext.TraceID() != traceID ||
			child.Parent.SpanID() != server.SpanContext.SpanID() {
			t.Errorf("%s: kind %v, trace %v, parent %v; want a client span under the server span",
				child.Name, child.SpanKind, child.SpanContext.TraceID(), child.Parent.SpanID())
		}
	}

	// The core continues the trace from the Embed client span.
	calls := core.Calls()
	if want := "00-" + traceID.String() + "-" + embed.SpanContext.SpanID().String() + "-01"; len(calls) != 1 || calls[0].TraceParent != want {
		t.Errorf("core calls = %+v, want one with traceparent %s", calls, want)
	}

	// The client learns the trace.
	if got := rec.Header().Get("X-Trace-Id"); got != traceID.String() {
		t.Errorf("X-Trace-Id = %q, want %s", got, traceID)
	}
	if got, want := rec.Header().Get("traceresponse"), "00-"+traceID.String()+"-"+server.SpanContext.SpanID().String()+"-01"; got != want {
		t.Errorf("traceresponse = %q, want %q", got, want)
	}

	var body struct {
		Usage struct {
			PromptTokens int64 `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Usage.PromptTokens == 0 {
		t.Fatalf("usage: %v %s", err, rec.Body)
	}
	for key, want := range map[attribute.Key]attribute.Value{
		"http.route":                      attribute.StringValue("/v1/embeddings"),
		"http.response.status_code":       attribute.IntValue(200),
		"tandem.request_id":               attribute.StringValue("tr-1"),
		"tandem.embeddings.input_count":   attribute.IntValue(2),
		"gen_ai.operation.name":           attribute.StringValue("embeddings"),
		"gen_ai.request.model":            attribute.StringValue("all-MiniLM-L6-v2"),
		"gen_ai.response.model":           attribute.StringValue(fakecore.ModelID),
		"gen_ai.request.encoding_formats": attribute.StringSliceValue([]string{"base64"}),
		"gen_ai.usage.input_tokens":       attribute.Int64Value(body.Usage.PromptTokens),
	} {
		if got, ok := attrOf(server, key); !ok || got != want {
			t.Errorf("server span %s = %v, want %v", key, got.String(), want.String())
		}
	}
	if server.Status.Code != codes.Unset {
		t.Errorf("server span status = %v, want unset", server.Status)
	}

	// The access log line is written inside the span and names it.
	line := accessLogLine(t, s.logs.String(), "embeddings")
	if line["trace_id"] != traceID.String() || line["span_id"] != server.SpanContext.SpanID().String() {
		t.Errorf("access log line = %v, want trace_id %s and span_id %s", line, traceID, server.SpanContext.SpanID())
	}
}

func TestClientTraceparentIsContinued(t *testing.T) {
	core := fakecore.Start(t)
	tracing, exporter := newTestTracing(t)
	s := newTracedIntegrationServer(t, core.Addr, 5*time.Second, tracing)

	rec := s.postJSON(validBody, "traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01", "baggage", "tenant=acme")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}

	server := findSpan(t, exporter.GetSpans(), embeddingsSpan)
	if server.SpanContext.TraceID().String() != clientTraceID || server.Parent.SpanID().String() != clientSpanID || !server.Parent.IsRemote() {
		t.Errorf("server span: trace %v, parent %v (remote %v); want the client's trace and span as remote parent",
			server.SpanContext.TraceID(), server.Parent.SpanID(), server.Parent.IsRemote())
	}
	if got := rec.Header().Get("X-Trace-Id"); got != clientTraceID {
		t.Errorf("X-Trace-Id = %q, want the client's trace %s", got, clientTraceID)
	}
	embed := findSpan(t, exporter.GetSpans(), embedRPCSpan)
	calls := core.Calls()
	if want := "00-" + clientTraceID + "-" + embed.SpanContext.SpanID().String() + "-01"; len(calls) != 1 || calls[0].TraceParent != want {
		t.Errorf("core calls = %+v, want one with traceparent %s", calls, want)
	}
	if calls[0].Baggage != "tenant=acme" {
		t.Errorf("core got baggage %q, want the client's tenant=acme", calls[0].Baggage)
	}
}

func TestUnsampledClientTraceIsFollowed(t *testing.T) {
	tracing, exporter := newTestTracing(t)
	s := newTestServer(t, func(d *Deps) { d.Tracing = tracing })

	// The client decided not to record this trace (flags 00); the default
	// sampler follows it. The ids still come back: they are in the logs.
	rec := s.postJSON(validBody, "traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-00")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if spans := exporter.GetSpans(); len(spans) != 0 {
		t.Errorf("spans = %v, want none for an unsampled trace", spanNames(spans))
	}
	if got := rec.Header().Get("X-Trace-Id"); got != clientTraceID {
		t.Errorf("X-Trace-Id = %q, want %s", got, clientTraceID)
	}
	if got := rec.Header().Get("traceresponse"); !strings.HasPrefix(got, "00-"+clientTraceID+"-") || !strings.HasSuffix(got, "-00") {
		t.Errorf("traceresponse = %q, want the client's trace, flagged not sampled", got)
	}
	if line := accessLogLine(t, s.logs.String(), "embeddings"); line["trace_id"] != clientTraceID {
		t.Errorf("access log line = %v, want trace_id %s", line, clientTraceID)
	}
}

func TestProbesAndUnmatchedRoutesAreNotTraced(t *testing.T) {
	core := fakecore.Start(t)
	tracing, exporter := newTestTracing(t)
	s := newTracedIntegrationServer(t, core.Addr, 5*time.Second, tracing)

	for _, req := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200}, // a real Health.Check RPC to the core
		{"GET", "/v1/nothing-here", 404},
		{"DELETE", "/v1/embeddings", 405},
	} {
		rec := s.do(req.method, req.path, "", "traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
		if rec.Code != req.status {
			t.Errorf("%s %s: %d, want %d", req.method, req.path, rec.Code, req.status)
		}
		if h := rec.Header().Get("X-Trace-Id"); h != "" {
			t.Errorf("%s %s: X-Trace-Id %q on an untraced route", req.method, req.path, h)
		}
	}
	if spans := exporter.GetSpans(); len(spans) != 0 {
		t.Errorf("spans = %v, want none", spanNames(spans))
	}
}

func TestErrorsAreRecordedOnTheSpan(t *testing.T) {
	tracing, exporter := newTestTracing(t)
	s := newTestServer(t, func(d *Deps) {
		d.Tracing = tracing
		d.Keys = auth.NewKeySet([]string{"sk-good"})
	})
	s.core.set(func(context.Context, upstream.EmbedRequest) (upstream.EmbedResult, error) {
		return upstream.EmbedResult{}, &upstream.Error{Method: "Embed", Kind: upstream.KindUnavailable, Message: "connection refused"}
	})
	key := []string{"Authorization", "Bearer sk-good"}

	for _, tc := range []struct {
		name   string
		send   func() *httptest.ResponseRecorder
		code   string
		status codes.Code // of the span
	}{
		// Client errors leave the span's status unset, as the HTTP
		// conventions say for server spans.
		{"bad request", func() *httptest.ResponseRecorder { return s.postJSON(`{"model":`, key...) }, codeInvalidJSON, codes.Unset},
		// Rejected by middleware before the handler: traced all the same.
		{"no API key", func() *httptest.ResponseRecorder { return s.postJSON(validBody) }, codeInvalidAPIKey, codes.Unset},
		{"core down", func() *httptest.ResponseRecorder { return s.postJSON(validBody, key...) }, codeUpstreamUnavailable, codes.Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exporter.Reset()
			rec := tc.send()
			spans := exporter.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("spans = %v, want one", spanNames(spans))
			}
			span := spans[0]
			// Error responses name their trace too: they are the ones
			// someone will want to look up.
			if got := rec.Header().Get("X-Trace-Id"); got != span.SpanContext.TraceID().String() {
				t.Errorf("X-Trace-Id = %q, want %s", got, span.SpanContext.TraceID())
			}
			if got, _ := attrOf(&span, "tandem.error.code"); got.AsString() != tc.code {
				t.Errorf("tandem.error.code = %q, want %q", got.AsString(), tc.code)
			}
			if span.Status.Code != tc.status {
				t.Errorf("status = %v, want %v", span.Status.Code, tc.status)
			}
			errorType, hasErrorType := attrOf(&span, "error.type")
			exception := slices.ContainsFunc(span.Events, func(e sdktrace.Event) bool { return e.Name == "exception" })
			if server := tc.status == codes.Error; hasErrorType != server || exception != server {
				t.Errorf("error.type %q (present %v), exception event %v; want both only for a server error",
					errorType.AsString(), hasErrorType, exception)
			}
			if hasErrorType && errorType.AsString() != tc.code {
				t.Errorf("error.type = %q, want %q", errorType.AsString(), tc.code)
			}
		})
	}
}

func TestUntracedServerSendsNoTraceHeaders(t *testing.T) {
	// Tracing off: no span, so the client's traceparent is not continued
	// (nor passed on), and nothing names a trace.
	s := newTestServer(t)
	rec := s.postJSON(validBody, "traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	for _, h := range []string{"X-Trace-Id", "traceresponse"} {
		if v := rec.Header().Get(h); v != "" {
			t.Errorf("%s = %q with tracing off", h, v)
		}
	}
	if strings.Contains(s.logs.String(), "trace_id") {
		t.Errorf("logs carry a trace id with tracing off:\n%s", s.logs)
	}
}

func findSpan(t *testing.T, spans tracetest.SpanStubs, name string) *tracetest.SpanStub {
	t.Helper()
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	t.Fatalf("no span %q in %v", name, spanNames(spans))
	return nil
}

func spanNames(spans tracetest.SpanStubs) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name
	}
	return names
}

func attrOf(span *tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range span.Attributes {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// accessLogLine returns the access log line of the given route.
func accessLogLine(t *testing.T, logs, route string) map[string]any {
	t.Helper()
	for l := range strings.Lines(logs) {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) == nil && line["msg"] == "http request" && line["route"] == route {
			return line
		}
	}
	t.Fatalf("no access log line for %s in:\n%s", route, logs)
	return nil
}
