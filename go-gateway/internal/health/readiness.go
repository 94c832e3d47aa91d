// Package health decides whether the gateway is ready for traffic. Ready
// means: not draining, and at least one core backend reports SERVING over
// grpc.health.v1. Liveness (/healthz) needs no package: if the process can
// answer, it is alive; restarting it for a core outage would not help.
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

// Report is the outcome of a readiness check.
type Report struct {
	Ready bool
	// Reason is one of the Reason* constants when not ready.
	Reason string
	// Err is the underlying failure, for logs only (it may name internal
	// addresses).
	Err error
}

// Readiness tracks draining and checks the core's health.
type Readiness struct {
	check   func(context.Context) error
	timeout time.Duration
	ttl     time.Duration
	now     func() time.Time
	logger  *slog.Logger

	draining atomic.Bool

	// mu serialises checks: concurrent probes share one health RPC instead
	// of each sending their own.
	mu        sync.Mutex
	last      Report
	checkedAt time.Time
	checked   bool
}

// NewReadiness returns a tracker that calls check (bounded by timeout) to
// learn whether a core backend is SERVING, reusing a result for ttl.
func NewReadiness(check func(context.Context) error, timeout, ttl time.Duration, logger *slog.Logger) *Readiness {
	return &Readiness{check: check, timeout: timeout, ttl: ttl, now: time.Now, logger: logger}
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

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	report := Report{Ready: true}
	if err := r.check(ctx); err != nil {
		report = Report{Reason: ReasonNoServingBackend, Err: err}
	}

	// Log changes only: probes run every few seconds, and a line per probe
	// while a core warms up would drown everything else.
	if !r.checked || report.Ready != r.last.Ready {
		if report.Ready {
			r.logger.InfoContext(ctx, "core is serving; gateway ready")
		} else {
			r.logger.WarnContext(ctx, "no core backend is serving; gateway not ready", "error", report.Err)
		}
	}
	r.last, r.checkedAt, r.checked = report, now, true
	return report
}
