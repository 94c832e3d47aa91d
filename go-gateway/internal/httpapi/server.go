// Package httpapi is the gateway's public HTTP API: an OpenAI-compatible
// embeddings endpoint, model listing, and probes. routes.go shows the whole
// surface; errors.go is the only place errors become responses.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/auth"
	"github.com/tandem-inference/tandem/go-gateway/internal/health"
	"github.com/tandem-inference/tandem/go-gateway/internal/limits"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// Embedder computes embeddings; *upstream.Client implements it.
type Embedder interface {
	Embed(ctx context.Context, req upstream.EmbedRequest) (upstream.EmbedResult, error)
}

// ModelSource describes a pool's model; *upstream.ModelCache implements it.
type ModelSource interface {
	Get(ctx context.Context) (upstream.ModelInfo, error)
	// Peek returns the last description fetched, without asking the core;
	// ok is false before the first one.
	Peek() (info upstream.ModelInfo, ok bool)
	// Invalidate makes the next Get ask the core again.
	Invalidate()
}

// ReadinessChecker decides /readyz; *health.Readiness implements it.
type ReadinessChecker interface {
	Check(ctx context.Context) health.Report
}

// Limits are the request limits of the API.
type Limits struct {
	// MaxBodyBytes caps a request body (413 above).
	MaxBodyBytes int64
	// RequestTimeout is the budget of one request, upstream calls included.
	RequestTimeout time.Duration
	// Input caps the texts of an embeddings request.
	Input InputLimits
}

// Deps are the dependencies of the API. Every field is required; disabled
// features are expressed by the dependency itself (an empty KeySet, a rate
// limiter with rate 0, an in-flight limiter without a cap, the zero
// Tracing).
type Deps struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Pools serve the models, one per model (or one unnamed pool for a
	// single-model deployment); at least one.
	Pools       []Pool
	Readiness   ReadinessChecker
	Keys        *auth.KeySet
	RateLimiter *limits.RateLimiter
	// ClientIP names a client by address for the rate limit; it believes
	// forwarding headers only from trusted proxies.
	ClientIP *limits.ClientIP
	InFlight *limits.InFlight
	Limits   Limits
	// Tracing traces the API routes; the zero value leaves them untraced.
	Tracing telemetry.Tracing
}

// NewServer returns the API's handler.
func NewServer(d Deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return withRequestID(mux)
}
