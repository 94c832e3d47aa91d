package main

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecollector"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
)

// These tests run the gateway with tracing configured by OTEL_* variables,
// exporting through the real OTLP exporter to an in-process collector.
// run's getenv decides whether tracing is on, but the exporter and the
// resource read the process environment, so the variables are set in both
// (t.Setenv: these tests cannot run in parallel).

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
)

// otelEnv sets env in the process environment too, after blanking any
// OTEL_* variable the test process inherited.
func otelEnv(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return env
}

func TestRunTracesRequestsIntoTheCollector(t *testing.T) {
	collector := fakecollector.Start(t)
	core := fakecore.Start(t)
	env := otelEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.Endpoint(),
		// Far beyond the test: only the flush at shutdown can deliver.
		"OTEL_BSP_SCHEDULE_DELAY": "600000",
	})
	g := startGateway(t, env, "-upstream-addresses", core.Addr)
	waitForStatus(t, "http://"+g.api+"/readyz", http.StatusOK)

	resp, body, err := postEmbeddings(http.DefaultClient, g.api, embeddingsBody,
		"traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01", "X-Request-Id", "trace-e2e")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/embeddings: %v %v %s", err, statusOf(resp), body)
	}
	if got := resp.Header.Get("X-Trace-Id"); got != clientTraceID {
		t.Errorf("X-Trace-Id = %q, want the client's trace %s", got, clientTraceID)
	}
	if calls := core.Calls(); len(calls) != 1 || !strings.HasPrefix(calls[0].TraceParent, "00-"+clientTraceID+"-") {
		t.Errorf("core calls = %+v, want one in the client's trace", calls)
	}
	if n := len(collector.Spans()); n != 0 {
		t.Fatalf("%d spans exported before shutdown; the test cannot show the flush", n)
	}

	if err := g.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	spans := collector.Spans()
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name
	}
	slices.Sort(names)
	// Nothing for /healthz, /readyz or their health-check RPCs.
	want := []string{"POST /v1/embeddings", "tandem.contract.v1.EmbeddingService/Embed", "tandem.contract.v1.EmbeddingService/GetModelInfo"}
	if !slices.Equal(names, want) {
		t.Fatalf("exported spans %v, want %v", names, want)
	}
	var server, embed fakecollector.Span
	for _, s := range spans {
		switch s.Name {
		case want[0]:
			server = s
		case want[1]:
			embed = s
		}
	}
	if server.TraceID != clientTraceID || server.ParentSpanID != clientSpanID {
		t.Errorf("server span in trace %s under %s, want the client's %s under %s", server.TraceID, server.ParentSpanID, clientTraceID, clientSpanID)
	}
	if embed.TraceID != clientTraceID || embed.ParentSpanID != server.SpanID {
		t.Errorf("Embed span in trace %s under %s, want under the server span %s", embed.TraceID, embed.ParentSpanID, server.SpanID)
	}
	if server.Resource["service.name"] != "tandem-gateway" || server.Attributes["tandem.request_id"] != "trace-e2e" {
		t.Errorf("server span resource %v, attributes %v", server.Resource, server.Attributes)
	}
	if !g.logs.contains(`"trace_id":"` + clientTraceID + `","span_id":"` + server.SpanID + `"`) {
		t.Error("no log line carries the server span's trace_id and span_id")
	}
}

func TestRunWithoutTracingInstallsNothing(t *testing.T) {
	collector := fakecollector.Start(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"no endpoint", nil},
		{"SDK disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.Endpoint(), "OTEL_SDK_DISABLED": "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := otel.GetTracerProvider()
			core := fakecore.Start(t)
			g := startGateway(t, otelEnv(t, tc.env), "-upstream-addresses", core.Addr)

			resp, body, err := postEmbeddings(http.DefaultClient, g.api, embeddingsBody,
				"traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /v1/embeddings: %v %v %s", err, statusOf(resp), body)
			}
			if got := resp.Header.Get("X-Trace-Id"); got != "" {
				t.Errorf("X-Trace-Id = %q with tracing off", got)
			}
			if calls := core.Calls(); len(calls) != 1 || calls[0].TraceParent != "" {
				t.Errorf("core calls = %+v, want one without trace context", calls)
			}
			if err := g.stop(t); err != nil {
				t.Fatalf("run: %v", err)
			}
			if otel.GetTracerProvider() != before {
				t.Error("run replaced the global tracer provider with tracing off")
			}
			if g.logs.contains(`"trace_id"`) {
				t.Error("log lines carry a trace_id with tracing off")
			}
		})
	}
	if n := collector.Connections(); n != 0 {
		t.Errorf("the collector saw %d connections with tracing off", n)
	}
}

func TestRunRejectsAnInvalidTracingConfiguration(t *testing.T) {
	env := map[string]string{"OTEL_TRACES_SAMPLER": "sometimes", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
	err := run(t.Context(), []string{"-listen-addr", "127.0.0.1:0", "-admin-addr", ""},
		func(k string) string { return env[k] }, &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER") || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("err = %v, want both problems reported", err)
	}
}
