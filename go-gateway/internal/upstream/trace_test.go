package upstream_test

import (
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tandem-inference/tandem/go-gateway/internal/config"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// newTracingProvider returns a tracer provider that hands every ended span
// to an in-memory exporter at once.
func newTracingProvider(t *testing.T) (telemetry.Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	return telemetry.Tracing{Provider: tp, Propagator: telemetry.NewPropagator()}, exporter
}

func TestTracedCallsCarryTheClientSpanToTheCore(t *testing.T) {
	core := fakecore.Start(t)
	tracing, exporter := newTracingProvider(t)
	c, err := upstream.New(testConfig(core.Addr), config.Default().Limits, metrics.New(), tracing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx, request := tracing.Provider.Tracer("test").Start(baggage.ContextWithBaggage(t.Context(), bag), "request")
	// A readiness check, even inside a traced request, makes no span.
	if err := c.CheckServing(ctx); err != nil {
		t.Fatalf("CheckServing: %v", err)
	}
	if _, err := embedOne(ctx, c); err != nil {
		t.Fatalf("Embed: %v", err)
	}
	request.End()

	spans := exporter.GetSpans()
	var client *tracetest.SpanStub
	for i, s := range spans {
		switch {
		case strings.Contains(s.Name, "grpc.health.v1"):
			t.Errorf("health check RPC traced: %s", s.Name)
		case s.Name == "tandem.contract.v1.EmbeddingService/Embed":
			client = &spans[i]
		}
	}
	if client == nil || len(spans) != 2 {
		t.Fatalf("spans = %v, want the request and one Embed client span", spanNames(spans))
	}
	requestSC := request.SpanContext()
	if client.SpanKind != trace.SpanKindClient || client.Parent.SpanID() != requestSC.SpanID() ||
		client.SpanContext.TraceID() != requestSC.TraceID() {
		t.Errorf("client span: kind %v, parent %v, trace %v; want a client span under %v",
			client.SpanKind, client.Parent.SpanID(), client.SpanContext.TraceID(), requestSC.SpanID())
	}

	calls := core.Calls()
	if len(calls) != 1 {
		t.Fatalf("core saw %d Embed calls, want 1", len(calls))
	}
	// The core's parent is the client span, not the request's span: that
	// is the edge that joins the two services' spans into one trace.
	want := fmt.Sprintf("00-%s-%s-01", requestSC.TraceID(), client.SpanContext.SpanID())
	if calls[0].TraceParent != want {
		t.Errorf("core got traceparent %q, want %q", calls[0].TraceParent, want)
	}
	if calls[0].Baggage != "tenant=acme" {
		t.Errorf("core got baggage %q, want tenant=acme", calls[0].Baggage)
	}
}

func TestUntracedClientSendsNoTraceContext(t *testing.T) {
	core := fakecore.Start(t)
	c, _ := newClient(t, testConfig(core.Addr))

	// Even a context that carries a span (from some other instrumentation)
	// is not propagated: with tracing off the channel has no trace handler.
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	})
	if _, err := embedOne(trace.ContextWithSpanContext(t.Context(), sc), c); err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if calls := core.Calls(); len(calls) != 1 || calls[0].TraceParent != "" {
		t.Errorf("core calls = %+v, want one without a traceparent", calls)
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name
	}
	return names
}
