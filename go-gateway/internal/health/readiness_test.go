package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

func newTestReadiness(check func(context.Context) error, ttl time.Duration) *Readiness {
	return NewReadiness(check, time.Second, ttl, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestReadyFollowsTheCheck(t *testing.T) {
	var healthy atomic.Bool
	r := newTestReadiness(func(context.Context) error {
		if healthy.Load() {
			return nil
		}
		return errors.New("NOT_SERVING")
	}, 0)

	if rep := r.Check(t.Context()); rep.Ready || rep.Reason != ReasonNoServingBackend || rep.Err == nil {
		t.Errorf("unhealthy core: %+v", rep)
	}
	healthy.Store(true)
	if rep := r.Check(t.Context()); !rep.Ready {
		t.Errorf("healthy core: %+v", rep)
	}
}

func TestDrainingIsNotReadyWhateverTheCore(t *testing.T) {
	r := newTestReadiness(func(context.Context) error { return nil }, 0)
	r.StartDraining()
	if rep := r.Check(t.Context()); rep.Ready || rep.Reason != ReasonDraining {
		t.Errorf("draining: %+v", rep)
	}
}

func TestResultsAreCachedForTheTTL(t *testing.T) {
	var calls atomic.Int64
	r := newTestReadiness(func(context.Context) error { calls.Add(1); return nil }, time.Hour)
	for range 5 {
		r.Check(t.Context())
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("%d checks within the TTL, want 1", got)
	}
}

func TestCheckIsBoundedByTheTimeout(t *testing.T) {
	r := NewReadiness(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, 50*time.Millisecond, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if rep := r.Check(t.Context()); rep.Ready || !errors.Is(rep.Err, context.DeadlineExceeded) {
		t.Errorf("hanging check: %+v", rep)
	}
}
