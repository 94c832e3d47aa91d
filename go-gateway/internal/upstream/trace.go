package upstream

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/grpc"

	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
)

// traceOptions instruments the channel to the core when tracing is on. The
// otelgrpc stats handler starts a client span for every attempt of an RPC
// (a retried call shows as one span per attempt, all children of the
// request's span) and writes the span's context into the call's metadata as
// traceparent, tracestate and baggage, which the core continues. A stats
// handler, unlike an interceptor, sees each attempt and the real wire
// timing.
//
// grpc.health.v1 calls are left out: the readiness check's Health.Check
// runs for every uncached /readyz probe and would fill the tracing backend
// with one-span traces. (The Watch streams of client-side health checking
// are grpc-go internals that bypass stats handlers anyway.)
func traceOptions(t telemetry.Tracing) []grpc.DialOption {
	if !t.Enabled() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(t.Provider),
		otelgrpc.WithPropagators(t.Propagator),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	))}
}
