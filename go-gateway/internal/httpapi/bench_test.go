package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
)

// BenchmarkEmbeddings is the gateway's per-request work on the two request
// shapes of the benchmarks (bench/cpu_cost.py): the API handler with its
// middleware, the real gRPC client and an in-process fake core over
// loopback, 32 callers at a time. `make bench-profile` runs it with
// -cpuprofile to draw docs/benchmarks/flame-gateway.svg: a profile of the
// gateway's code that needs no profiling endpoint in the binary. The fake
// core's side of each call (its gRPC server, fakecore.Vector) shares the
// process and the profile; its frames are named as such.
func BenchmarkEmbeddings(b *testing.B) {
	core := fakecore.Start(b)
	benchmarkEmbeddings(b, newIntegrationServer(b, core.Addr, 5*time.Second))
}

// BenchmarkEmbeddingsTraced is BenchmarkEmbeddings with every request
// traced, spans batched to an exporter that drops them: what tracing at
// 100% sampling adds to the gateway's own work, export encoding aside.
func BenchmarkEmbeddingsTraced(b *testing.B) {
	core := fakecore.Start(b)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracing := telemetry.Tracing{Provider: tp, Propagator: telemetry.NewPropagator()}
	benchmarkEmbeddings(b, newTracedIntegrationServer(b, core.Addr, 5*time.Second, tracing))
}

func benchmarkEmbeddings(b *testing.B, s *testServer) {
	for _, texts := range []int{1, 32} {
		body := embeddingsBody(texts)
		b.Run(fmt.Sprintf("texts=%d", texts), func(b *testing.B) {
			b.ReportAllocs()
			// RunParallel starts parallelism x GOMAXPROCS goroutines: 32 callers on 2 CPUs.
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if rec := s.postJSON(body); rec.Code != http.StatusOK {
						b.Errorf("status %d: %s", rec.Code, rec.Body)
						return
					}
				}
			})
		})
	}
}

// embeddingsBody is an OpenAI request with texts sentences of the
// benchmark corpus's typical length (about 40 tokens).
func embeddingsBody(texts int) string {
	sentence := strings.TrimSpace(strings.Repeat("the gateway forwards a sentence of ordinary length ", 5))
	inputs := make([]string, texts)
	for i := range inputs {
		inputs[i] = fmt.Sprintf("%q", fmt.Sprintf("%s %d", sentence, i))
	}
	return `{"model":"all-MiniLM-L6-v2","input":[` + strings.Join(inputs, ",") + `]}`
}
