package httpapi

import (
	"log/slog"
	"net/http"
)

// addRoutes is the whole API surface.
func addRoutes(mux *http.ServeMux, d Deps) {
	// API routes: traced, rate limited by address, authenticated, rate
	// limited by key, bounded in time and concurrency, in that order, so
	// that unauthenticated or over-limit requests are turned away before
	// they cost anything. The span starts
	// first so that it covers rejections too, and the access log line is
	// written inside it and carries its trace id.
	api := func(route string, h http.Handler) http.Handler {
		return chain(h,
			traceRequests(d.Tracing),
			instrument(route, slog.LevelInfo, d.Metrics, d.Logger),
			withTimeout(d.Limits.RequestTimeout),
			limitByAddress(d.RateLimiter, d.ClientIP, d.Keys, d.Metrics, d.Logger),
			requireAPIKey(d.Keys, d.Logger),
			limitByKey(d.RateLimiter, d.Keys, d.Metrics, d.Logger),
			limitInFlight(d.InFlight, d.Metrics, d.Logger),
		)
	}
	// Probes: no auth or limits (kubelet has no key, and a probe rejected for
	// load would get a healthy pod killed), no traces, and access-logged at
	// debug level, because they arrive every few seconds.
	probe := func(route string, h http.Handler) http.Handler {
		return chain(h, instrument(route, slog.LevelDebug, d.Metrics, d.Logger))
	}
	// Fallbacks answer wrong methods and unknown paths in the API's JSON
	// error shape instead of the mux's plain text. They are not traced:
	// scanners probing random paths would otherwise fill the trace store.
	fallback := func(h http.Handler) http.Handler {
		return chain(h, instrument("unmatched", slog.LevelInfo, d.Metrics, d.Logger))
	}

	pools := router(d.Pools)
	mux.Handle("POST /v1/embeddings", api("embeddings", handleEmbeddings(pools, d.Limits, d.Metrics, d.Logger)))
	mux.Handle("GET /v1/models", api("models", handleListModels(pools, d.Readiness, d.Limits.Input, d.Logger)))
	mux.Handle("GET /v1/models/{id...}", api("model", handleGetModel(pools, d.Readiness, d.Limits.Input, d.Logger)))
	mux.Handle("GET /healthz", probe("healthz", handleHealthz()))
	mux.Handle("GET /readyz", probe("readyz", handleReadyz(d.Readiness)))

	// A pattern with a method is more specific than the same path without
	// one, so these only see the methods not handled above.
	mux.Handle("/v1/embeddings", fallback(handleMethodNotAllowed(http.MethodPost, d.Logger)))
	mux.Handle("/v1/models", fallback(handleMethodNotAllowed(http.MethodGet, d.Logger)))
	mux.Handle("/v1/models/{id...}", fallback(handleMethodNotAllowed(http.MethodGet, d.Logger)))
	mux.Handle("/healthz", fallback(handleMethodNotAllowed(http.MethodGet, d.Logger)))
	mux.Handle("/readyz", fallback(handleMethodNotAllowed(http.MethodGet, d.Logger)))
	mux.Handle("/", fallback(handleNotFound(d.Logger)))
}

// chain wraps h in middleware; the first one listed runs first.
func chain(h http.Handler, middleware ...func(http.Handler) http.Handler) http.Handler {
	for i := len(middleware) - 1; i >= 0; i-- {
		h = middleware[i](h)
	}
	return h
}
