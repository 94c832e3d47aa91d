package upstream_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
	"github.com/tandem-inference/tandem/go-gateway/internal/config"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// Generous bound for anything that should happen "soon": the tests assert
// behaviour, never speed, so a loaded CI machine does not make them flaky.
const eventually = 10 * time.Second

func testConfig(addrs ...string) config.Upstream {
	cfg := config.Default().Upstream
	cfg.Target = ""
	cfg.Addresses = addrs
	cfg.CallTimeout = 5 * time.Second
	cfg.RetryInitialBackoff = 10 * time.Millisecond
	cfg.RetryMaxBackoff = 50 * time.Millisecond
	return cfg
}

func newClient(t *testing.T, cfg config.Upstream) (*upstream.Client, *metrics.Metrics) {
	t.Helper()
	m := metrics.New()
	c, err := upstream.New(cfg, config.Default().Limits, m, telemetry.Tracing{})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, m
}

func embedOne(ctx context.Context, c *upstream.Client) (upstream.EmbedResult, error) {
	return c.Embed(ctx, upstream.EmbedRequest{Texts: []string{"hello world"}, Model: fakecore.ModelID, Truncate: true})
}

func TestEmbedReturnsOneNormalizedVectorPerText(t *testing.T) {
	core := fakecore.Start(t)
	c, _ := newClient(t, testConfig(core.Addr))

	res, err := c.Embed(t.Context(), upstream.EmbedRequest{Texts: []string{"a b", "c"}, Model: fakecore.Alias, Truncate: true})
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if res.Model != fakecore.ModelID {
		t.Errorf("model = %q, want %q", res.Model, fakecore.ModelID)
	}
	if len(res.Embeddings) != 2 {
		t.Fatalf("got %d embeddings, want 2", len(res.Embeddings))
	}
	for i, e := range res.Embeddings {
		if len(e.Values) != fakecore.Dimension {
			t.Errorf("embedding %d has %d values, want %d", i, len(e.Values), fakecore.Dimension)
		}
	}
	if res.TotalTokens != 4+3 {
		t.Errorf("total tokens = %d, want 7", res.TotalTokens)
	}
	if res.ServerTiming == "" {
		t.Error("server-timing trailer was not passed through")
	}
}

func TestEmbedAlwaysAsksForNormalizedVectors(t *testing.T) {
	core := fakecore.Start(t)
	var normalize atomic.Value
	core.SetEmbed(func(ctx context.Context, req *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		normalize.Store(req.Normalize != nil && *req.Normalize)
		return fakecore.DefaultEmbed(ctx, req)
	})
	c, _ := newClient(t, testConfig(core.Addr))
	if _, err := embedOne(t.Context(), c); err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if got, _ := normalize.Load().(bool); !got {
		t.Error("request did not set normalize=true")
	}
}

func TestRetriesOnlyUnavailable(t *testing.T) {
	tests := []struct {
		code         codes.Code
		wantKind     upstream.Kind
		wantAttempts int64
		wantErr      bool
	}{
		{codes.Unavailable, upstream.KindUnavailable, 2, false}, // retried, then succeeds
		{codes.InvalidArgument, upstream.KindInvalid, 1, true},
		{codes.ResourceExhausted, upstream.KindOverloaded, 1, true},
		{codes.DeadlineExceeded, upstream.KindDeadlineExceeded, 1, true},
		{codes.Internal, upstream.KindInternal, 1, true},
		{codes.NotFound, upstream.KindNotFound, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			core := fakecore.Start(t)
			var calls atomic.Int64
			core.SetEmbed(func(ctx context.Context, req *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
				if calls.Add(1) == 1 {
					return nil, status.Error(tt.code, "scripted failure")
				}
				return fakecore.DefaultEmbed(ctx, req)
			})
			c, m := newClient(t, testConfig(core.Addr))

			_, err := embedOne(t.Context(), c)
			if got := core.EmbedCalls(); got != tt.wantAttempts {
				t.Errorf("core saw %d attempts, want %d", got, tt.wantAttempts)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				var ue *upstream.Error
				if !errors.As(err, &ue) || ue.Kind != tt.wantKind {
					t.Errorf("err = %v, want *upstream.Error of kind %s", err, tt.wantKind)
				}
			}
			retries := testutil.ToFloat64(m.UpstreamRetries.WithLabelValues(upstream.DefaultPoolLabel, "Embed"))
			if want := float64(tt.wantAttempts - 1); retries != want {
				t.Errorf("retries metric = %v, want %v", retries, want)
			}
		})
	}
}

func TestRetriesStopAtMaxAttempts(t *testing.T) {
	core := fakecore.Start(t)
	core.SetEmbed(func(context.Context, *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		return nil, status.Error(codes.Unavailable, "draining")
	})
	cfg := testConfig(core.Addr)
	cfg.MaxAttempts = 3
	c, _ := newClient(t, cfg)

	_, err := embedOne(t.Context(), c)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Kind != upstream.KindUnavailable {
		t.Fatalf("err = %v, want UNAVAILABLE", err)
	}
	if got := core.EmbedCalls(); got != 3 {
		t.Errorf("core saw %d attempts, want 3", got)
	}
}

func TestDeadlineIsTheSmallerOfCallTimeoutAndCallerBudget(t *testing.T) {
	core := fakecore.Start(t)
	cfg := testConfig(core.Addr)
	cfg.CallTimeout = 2 * time.Second
	c, _ := newClient(t, cfg)

	if _, err := embedOne(t.Context(), c); err != nil {
		t.Fatalf("Embed: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := embedOne(ctx, c); err != nil {
		t.Fatalf("Embed with short budget: %v", err)
	}

	calls := core.Calls()
	if len(calls) != 2 {
		t.Fatalf("core saw %d calls, want 2", len(calls))
	}
	for i, limit := range []time.Duration{cfg.CallTimeout, 500 * time.Millisecond} {
		if !calls[i].HasDeadline || calls[i].Budget <= 0 || calls[i].Budget > limit {
			t.Errorf("call %d: deadline set %v, budget %v, want within (0, %v]", i, calls[i].HasDeadline, calls[i].Budget, limit)
		}
	}
}

func TestSlowCoreTimesOutWithDeadlineExceeded(t *testing.T) {
	core := fakecore.Start(t)
	core.SetEmbed(func(ctx context.Context, _ *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		<-ctx.Done() // never answers in time
		return nil, ctx.Err()
	})
	cfg := testConfig(core.Addr)
	cfg.CallTimeout = 200 * time.Millisecond
	c, _ := newClient(t, cfg)

	start := time.Now()
	_, err := embedOne(t.Context(), c)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Kind != upstream.KindDeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
	if elapsed := time.Since(start); elapsed > eventually {
		t.Errorf("call took %v; the deadline did not stop it", elapsed)
	}
}

func TestUnreachableCoreIsUnavailable(t *testing.T) {
	addr := closedPort(t)
	c, _ := newClient(t, testConfig(addr))

	_, err := embedOne(t.Context(), c)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Kind != upstream.KindUnavailable {
		t.Fatalf("err = %v, want UNAVAILABLE", err)
	}
}

func TestRoundRobinSpreadsCallsOverEveryBackend(t *testing.T) {
	cores := []*fakecore.Core{fakecore.Start(t), fakecore.Start(t), fakecore.Start(t)}
	c, _ := newClient(t, testConfig(cores[0].Addr, cores[1].Addr, cores[2].Addr))

	allServed := func() bool {
		for _, core := range cores {
			if core.EmbedCalls() == 0 {
				return false
			}
		}
		return true
	}
	// Backends become ready one by one, so keep calling (bounded in count
	// and time) until each has seen traffic.
	deadline := time.Now().Add(eventually)
	for i := 0; i < 300 && !allServed() && time.Now().Before(deadline); i++ {
		if _, err := embedOne(t.Context(), c); err != nil {
			t.Fatalf("Embed: %v", err)
		}
	}
	for i, core := range cores {
		if core.EmbedCalls() == 0 {
			t.Errorf("backend %d got no calls", i)
		}
	}
}

func TestDNSTargetResolvesAndServes(t *testing.T) {
	core := fakecore.Start(t)
	cfg := testConfig()
	cfg.Addresses = nil
	cfg.Target = "dns:///" + core.Addr
	c, _ := newClient(t, cfg)

	if _, err := embedOne(t.Context(), c); err != nil {
		t.Fatalf("Embed via %s: %v", cfg.Target, err)
	}
}

func TestRequestIDIsSentAsMetadata(t *testing.T) {
	core := fakecore.Start(t)
	c, _ := newClient(t, testConfig(core.Addr))

	ctx := requestid.NewContext(t.Context(), "req-123")
	if _, err := embedOne(ctx, c); err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if got := core.Calls()[0].RequestID; got != "req-123" {
		t.Errorf("core saw x-request-id %q, want req-123", got)
	}
}

func TestErrorDetailsAreDecoded(t *testing.T) {
	core := fakecore.Start(t)
	c, _ := newClient(t, testConfig(core.Addr))

	core.SetEmbed(func(context.Context, *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		return nil, fakecore.BadRequest(contractv1.ErrorReason_ERROR_REASON_CONTEXT_LENGTH_EXCEEDED, "texts[3]", "has too many tokens")
	})
	_, err := embedOne(t.Context(), c)
	var ue *upstream.Error
	want := upstream.FieldViolation{Field: "texts", Index: 3, Description: "has too many tokens"}
	if !errors.As(err, &ue) || ue.Kind != upstream.KindInvalid || len(ue.Violations) != 1 || ue.Violations[0] != want {
		t.Fatalf("err = %#v, want one violation %+v", err, want)
	}
	if ue.Reason != contractv1.ErrorReason_ERROR_REASON_CONTEXT_LENGTH_EXCEEDED {
		t.Errorf("reason = %s, want the ErrorInfo reason", ue.Reason)
	}

	core.SetEmbed(func(context.Context, *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		return nil, fakecore.Overloaded(3 * time.Second)
	})
	_, err = embedOne(t.Context(), c)
	if !errors.As(err, &ue) || ue.Kind != upstream.KindOverloaded || ue.RetryDelay != 3*time.Second ||
		ue.Reason != contractv1.ErrorReason_ERROR_REASON_OVERLOADED {
		t.Fatalf("err = %#v, want overload with a 3s retry delay", err)
	}

	// Without ErrorInfo or RetryInfo (grpcio's own limits, a proxy): still
	// overload, never the deterministic size error.
	core.SetEmbed(func(context.Context, *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		return nil, status.Error(codes.ResourceExhausted, "Concurrent RPC limit exceeded!")
	})
	_, err = embedOne(t.Context(), c)
	if !errors.As(err, &ue) || ue.Kind != upstream.KindOverloaded || ue.Reason != contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		t.Fatalf("err = %#v, want RESOURCE_EXHAUSTED that is overload, without a reason", err)
	}
}

func TestContractViolationIsReported(t *testing.T) {
	core := fakecore.Start(t)
	core.SetEmbed(func(context.Context, *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		return &contractv1.EmbedResponse{Model: fakecore.ModelID}, nil // no embeddings
	})
	c, _ := newClient(t, testConfig(core.Addr))

	_, err := embedOne(t.Context(), c)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Kind != upstream.KindInternal {
		t.Fatalf("err = %v, want a contract violation (INTERNAL)", err)
	}
}

func TestFetchModelInfo(t *testing.T) {
	core := fakecore.Start(t)
	c, _ := newClient(t, testConfig(core.Addr))

	info, err := c.FetchModelInfo(t.Context())
	if err != nil {
		t.Fatalf("FetchModelInfo: %v", err)
	}
	if info.ID != fakecore.ModelID || info.Dimension != fakecore.Dimension || !info.Accepts(fakecore.Alias) {
		t.Errorf("info = %+v", info)
	}
	if info.Accepts("gpt-4") {
		t.Error("info accepts an unknown model")
	}
}

func TestCheckServingFollowsBackendHealth(t *testing.T) {
	core := fakecore.Start(t)
	c, _ := newClient(t, testConfig(core.Addr))

	waitFor := func(wantServing bool) {
		t.Helper()
		deadline := time.Now().Add(eventually)
		for {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			err := c.CheckServing(ctx)
			cancel()
			if (err == nil) == wantServing {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("CheckServing = %v, want serving=%v", err, wantServing)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(true)
	core.SetServing(false)
	waitFor(false)
	core.SetServing(true)
	waitFor(true)
}

func TestNotServingBackendGetsNoTraffic(t *testing.T) {
	healthy, warming := fakecore.Start(t), fakecore.Start(t)
	warming.SetServing(false)
	c, _ := newClient(t, testConfig(healthy.Addr, warming.Addr))

	for range 50 {
		if _, err := embedOne(t.Context(), c); err != nil {
			t.Fatalf("Embed: %v", err)
		}
	}
	if got := warming.EmbedCalls(); got != 0 {
		t.Errorf("a NOT_SERVING backend got %d calls", got)
	}

	// Once it reports SERVING it joins the rotation.
	warming.SetServing(true)
	deadline := time.Now().Add(eventually)
	for i := 0; i < 500 && warming.EmbedCalls() == 0 && time.Now().Before(deadline); i++ {
		if _, err := embedOne(t.Context(), c); err != nil {
			t.Fatalf("Embed: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if warming.EmbedCalls() == 0 {
		t.Error("the backend got no calls after turning SERVING")
	}
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The in-flight gauge counts calls that are inside the core right now, per
// pool, and returns to zero however the calls end (success or error).
func TestInFlightGaugeCountsCallsInsideThePool(t *testing.T) {
	core := fakecore.Start(t)
	release := make(chan struct{})
	var entered atomic.Int64
	core.SetEmbed(func(ctx context.Context, req *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		n := entered.Add(1)
		<-release
		if n%2 == 0 {
			return nil, status.Error(codes.InvalidArgument, "scripted failure")
		}
		return fakecore.DefaultEmbed(ctx, req)
	})
	c, m := newClient(t, testConfig(core.Addr))
	gauge := m.UpstreamInFlight.WithLabelValues(upstream.DefaultPoolLabel, "Embed")

	const calls = 4
	done := make(chan error, calls)
	for range calls {
		go func() { _, err := embedOne(t.Context(), c); done <- err }()
	}
	deadline := time.Now().Add(eventually)
	for entered.Load() < calls && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(gauge); got != calls {
		t.Errorf("in flight while %d calls wait in the core = %v, want %d", calls, got, calls)
	}
	close(release)
	for range calls {
		<-done
	}
	if got := testutil.ToFloat64(gauge); got != 0 {
		t.Errorf("in flight after every call ended = %v, want 0", got)
	}
}
