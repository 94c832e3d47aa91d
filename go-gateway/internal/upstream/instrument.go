package upstream

import (
	"context"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
)

// Retries happen inside grpc-go, below the interceptor. To count them, the
// interceptor puts a counter in the call's context and the stats handler,
// which grpc-go invokes once per attempt, increments it.
type attemptsKey struct{}

// metricsInterceptor records each call's final code, its duration (retries
// included, with the trace as exemplar when sampled) and how many retries it took, labelled with the pool's model, and
// keeps the pool's in-flight gauge: the gateway's view of the demand on each
// model, which a dashboard sets beside the cores' own queue wait.
func metricsInterceptor(m *metrics.Metrics, pool string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		attempts := new(atomic.Int32)
		ctx = context.WithValue(ctx, attemptsKey{}, attempts)
		start := time.Now()
		name := shortMethod(method)
		inFlight := m.UpstreamInFlight.WithLabelValues(pool, name)
		inFlight.Inc()

		err := invoker(ctx, method, req, reply, cc, opts...)

		inFlight.Dec()
		m.UpstreamCalls.WithLabelValues(pool, name, status.Code(err).String()).Inc()
		// ctx holds the gateway's server span (the client span starts
		// below, in the stats handler, within the same trace).
		metrics.ObserveWithTrace(ctx, m.UpstreamCallDuration.WithLabelValues(pool, name), time.Since(start).Seconds())
		if n := attempts.Load(); n > 1 {
			m.UpstreamRetries.WithLabelValues(pool, name).Add(float64(n - 1))
		}
		return err
	}
}

// attemptCounter is a stats.Handler that counts attempts per call.
type attemptCounter struct{}

func (attemptCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (attemptCounter) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if b, ok := s.(*stats.Begin); ok && b.IsClient() {
		if n, ok := ctx.Value(attemptsKey{}).(*atomic.Int32); ok {
			n.Add(1)
		}
	}
}

func (attemptCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (attemptCounter) HandleConn(context.Context, stats.ConnStats) {}
