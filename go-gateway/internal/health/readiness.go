// Package health decides whether the gateway is ready for traffic. Ready
// means: not draining, and at least one model's pool has a core backend that
// reports SERVING over grpc.health.v1. Each model's state is reported too, so
// an operator sees which pool is down while the gateway keeps serving the
// others. Liveness (/healthz) needs no package: if the process can answer, it
// is alive; restarting it for a core outage would not help.
package health

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons a Report gives for not being ready.
const (
	ReasonDraining         = "draining"
	ReasonNoServingBackend = "no_serving_backend"
)

// Backend is one model's pool as readiness sees it.
type Backend struct {
	// Model names the pool in reports, logs and the readiness gauge.
	Model string
	// Check returns nil when at least one of the pool's cores is SERVING.
	Check func(context.Context) error
}

// ModelState is one model's part of a Report.
type ModelState struct {
	Model string
	Ready bool
	// Err is the check's failure, for logs only (it may name internal
	// addresses).
	Err error
}

// Report is the outcome of a readiness check.
type Report struct {
	// Ready is true when at least one model can be served.
	Ready bool
	// Reason is one of the Reason* constants when not ready.
	Reason string
	// Err is the underlying failure, for logs only (it may name internal
	// addresses).
	Err error
	// Models is every model's state, in the configured order; empty while
	// draining (nothing is checked then).
	Models []ModelState
}

// Readiness tracks draining and checks the cores' health.
type Readiness struct {
	backends []Backend
	timeout  time.Duration
	ttl      time.Duration
	now      func() time.Time
	logger   *slog.Logger
	observe  func(model string, ready bool)

	draining atomic.Bool

	// mu serialises checks: concurrent probes share one round of health
	// RPCs instead of each sending their own.
	mu        sync.Mutex
	last      Report
	checkedAt time.Time
	checked   bool
}

// NewReadiness returns a tracker that checks every backend (concurrently,
// each bounded by timeout) and reuses a result for ttl. observe, when not
// nil, is told each model's state after every check (the readiness gauge).
func NewReadiness(backends []Backend, timeout, ttl time.Duration, observe func(model string, ready bool), logger *slog.Logger) *Readiness {
	if observe == nil {
		observe = func(string, bool) {}
	}
	return &Readiness{backends: backends, timeout: timeout, ttl: ttl, now: time.Now, logger: logger, observe: observe}
}

// StartDraining makes every later Check report not ready. It cannot be
// undone: draining ends with the process.
func (r *Readiness) StartDraining() { r.draining.Store(true) }

// Check reports whether the gateway should receive traffic.
func (r *Readiness) Check(ctx context.Context) Report {
	if r.draining.Load() {
		return Report{Reason: ReasonDraining}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.checked && now.Sub(r.checkedAt) < r.ttl {
		return r.last
	}

	report := r.checkAll(ctx)
	r.logChanges(ctx, report)
	r.last, r.checkedAt, r.checked = report, now, true
	return report
}

// checkAll asks every pool at once, so a pool whose check hangs until the
// timeout delays the probe by one timeout, not one per pool.
func (r *Readiness) checkAll(ctx context.Context) Report {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	states := make([]ModelState, len(r.backends))
	var wg sync.WaitGroup
	for i, b := range r.backends {
		wg.Go(func() {
			err := b.Check(ctx)
			states[i] = ModelState{Model: b.Model, Ready: err == nil, Err: err}
		})
	}
	wg.Wait()

	report := Report{Reason: ReasonNoServingBackend, Models: states}
	for _, s := range states {
		r.observe(s.Model, s.Ready)
		if s.Ready {
			report.Ready, report.Reason = true, ""
		} else if report.Err == nil {
			report.Err = s.Err
		}
	}
	if report.Ready {
		report.Err = nil
	}
	return report
}

// logChanges logs a model's state when it changes only: probes run every few
// seconds, and a line per probe while a core warms up would drown everything
// else.
func (r *Readiness) logChanges(ctx context.Context, report Report) {
	for i, s := range report.Models {
		if r.checked && i < len(r.last.Models) && r.last.Models[i].Ready == s.Ready {
			continue
		}
		if s.Ready {
			r.logger.InfoContext(ctx, "model's pool is serving", "model", s.Model)
		} else {
			r.logger.WarnContext(ctx, "no core of the model's pool is serving", "model", s.Model, "error", s.Err)
		}
	}
	if !r.checked || report.Ready != r.last.Ready {
		if report.Ready {
			r.logger.InfoContext(ctx, "a core is serving; gateway ready")
		} else {
			r.logger.WarnContext(ctx, "no core backend is serving; gateway not ready", "error", report.Err)
		}
	}
}
