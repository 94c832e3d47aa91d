package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestReadiness(check func(context.Context) error, ttl time.Duration) *Readiness {
	return NewReadiness([]Backend{{Model: "m", Check: check}}, time.Second, ttl, nil, discard)
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
	r := NewReadiness([]Backend{{Model: "m", Check: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}}}, 50*time.Millisecond, 0, nil, discard)
	if rep := r.Check(t.Context()); rep.Ready || !errors.Is(rep.Err, context.DeadlineExceeded) {
		t.Errorf("hanging check: %+v", rep)
	}
}

func TestOneServingPoolMakesTheGatewayReadyAndEachModelIsReported(t *testing.T) {
	var int8Up atomic.Bool
	down := errors.New("NOT_SERVING")
	gauge := map[string]bool{}
	var gaugeMu sync.Mutex
	r := NewReadiness([]Backend{
		{Model: "fp32", Check: func(context.Context) error { return nil }},
		{Model: "int8", Check: func(context.Context) error {
			if int8Up.Load() {
				return nil
			}
			return down
		}},
	}, time.Second, 0, func(model string, ready bool) {
		gaugeMu.Lock()
		defer gaugeMu.Unlock()
		gauge[model] = ready
	}, discard)

	rep := r.Check(t.Context())
	want := []ModelState{{Model: "fp32", Ready: true}, {Model: "int8", Ready: false, Err: down}}
	if !rep.Ready || rep.Reason != "" || !reflect.DeepEqual(rep.Models, want) {
		t.Errorf("one pool down: %+v, want ready with %+v", rep, want)
	}
	if !gauge["fp32"] || gauge["int8"] {
		t.Errorf("gauge = %v, want fp32 up and int8 down", gauge)
	}
	int8Up.Store(true)
	if rep := r.Check(t.Context()); !rep.Models[1].Ready || !gauge["int8"] {
		t.Errorf("int8 back: %+v, gauge %v", rep, gauge)
	}
}

func TestEveryPoolDownIsNotReady(t *testing.T) {
	down := errors.New("NOT_SERVING")
	check := func(context.Context) error { return down }
	r := NewReadiness([]Backend{{Model: "a", Check: check}, {Model: "b", Check: check}}, time.Second, 0, nil, discard)
	if rep := r.Check(t.Context()); rep.Ready || rep.Reason != ReasonNoServingBackend || !errors.Is(rep.Err, down) || len(rep.Models) != 2 {
		t.Errorf("all down: %+v", rep)
	}
}

func TestPoolsAreCheckedAtOnce(t *testing.T) {
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	r := NewReadiness([]Backend{{Model: "a", Check: hang}, {Model: "b", Check: hang}, {Model: "c", Check: hang}},
		100*time.Millisecond, 0, nil, discard)
	start := time.Now()
	r.Check(t.Context())
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("three hanging pools took %s, want about one timeout (100ms)", took)
	}
}
