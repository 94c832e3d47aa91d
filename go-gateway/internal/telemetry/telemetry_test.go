package telemetry_test

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecollector"
)

// The tests that turn tracing on use t.Setenv, because the exporter and the
// resource read their variables from the process environment; they cannot
// run in parallel.

// isolate blanks the OTEL_* variables the test process inherited (a
// developer's own OTEL_SERVICE_NAME, say); the libraries treat empty as
// unset.
func isolate(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
		}
	}
}

func TestSetupWithoutAnEndpointInstallsNothing(t *testing.T) {
	isolate(t)
	collector := fakecollector.Start(t)
	// Endpoint set, but the SDK switched off: no provider, no exporter, and
	// so no connection to the collector.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.Endpoint())
	t.Setenv("OTEL_SDK_DISABLED", "true")

	for _, getenv := range []func(string) string{
		func(string) string { return "" }, // no endpoint at all
		os.Getenv,                         // SDK disabled
	} {
		tracing, err := telemetry.Setup(t.Context(), getenv, "v1")
		if err != nil {
			t.Fatalf("Setup: %v", err)
		}
		if tracing.Enabled() || tracing.Provider != nil {
			t.Errorf("tracing is on: %+v", tracing)
		}
		if err := tracing.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		// The propagator is there either way (main makes it global).
		if fields := tracing.Propagator.Fields(); !slices.Contains(fields, "traceparent") || !slices.Contains(fields, "baggage") {
			t.Errorf("propagator fields = %v, want traceparent and baggage", fields)
		}
	}
	if n := collector.Connections(); n != 0 {
		t.Errorf("the collector saw %d connections with tracing off", n)
	}
}

func TestSetupExportsToTheConfiguredEndpointAndFlushesOnShutdown(t *testing.T) {
	isolate(t)
	collector := fakecollector.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.Endpoint())
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,service.namespace=tandem")
	// A batch delay far beyond the test: only the flush on Shutdown can
	// deliver the span.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")

	tracing, err := telemetry.Setup(t.Context(), os.Getenv, "v1.2.3")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if !tracing.Enabled() {
		t.Fatal("tracing is off with an endpoint set")
	}
	_, span := tracing.Provider.Tracer("test").Start(t.Context(), "work", trace.WithSpanKind(trace.SpanKindServer))
	span.End()
	if n := len(collector.Spans()); n != 0 {
		t.Fatalf("%d spans exported before Shutdown; the test cannot show the flush", n)
	}
	if err := tracing.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	spans := collector.Spans()
	if len(spans) != 1 || spans[0].Name != "work" || spans[0].TraceID != span.SpanContext().TraceID().String() {
		t.Fatalf("collector got %+v, want the span %q", spans, "work")
	}
	for key, want := range map[string]string{
		"service.name":                telemetry.DefaultServiceName,
		"service.version":             "v1.2.3",
		"deployment.environment.name": "test",
		"service.namespace":           "tandem",
		"telemetry.sdk.language":      "go",
	} {
		if got := spans[0].Resource[key]; got != want {
			t.Errorf("resource %s = %q, want %q", key, got, want)
		}
	}
}

func TestServiceNameFromTheEnvironmentWins(t *testing.T) {
	isolate(t)
	collector := fakecollector.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.Endpoint())
	t.Setenv("OTEL_SERVICE_NAME", "edge-eu")

	tracing, err := telemetry.Setup(t.Context(), os.Getenv, "")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	_, span := tracing.Provider.Tracer("test").Start(t.Context(), "work")
	span.End()
	if err := tracing.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	spans := collector.Spans()
	if len(spans) != 1 || spans[0].Resource["service.name"] != "edge-eu" {
		t.Fatalf("spans = %+v, want one from service edge-eu", spans)
	}
	if v, ok := spans[0].Resource["service.version"]; ok {
		t.Errorf("service.version = %q, want it left out when unknown", v)
	}
}

func TestShutdownIsBoundedByItsContextWhenTheCollectorIsDown(t *testing.T) {
	isolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", down)

	tracing, err := telemetry.Setup(t.Context(), os.Getenv, "")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	_, span := tracing.Provider.Tracer("test").Start(t.Context(), "lost")
	span.End()

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = tracing.Shutdown(ctx)
	if err == nil {
		t.Error("Shutdown reported success with the collector down")
	}
	// The exporter would retry for much longer; the deadline must win.
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Shutdown took %v with a 300ms deadline", elapsed)
	}
}
