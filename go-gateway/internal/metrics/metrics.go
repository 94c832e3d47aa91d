// Package metrics defines every Prometheus metric the gateway exports, on a
// registry of its own (never the global default one, so tests can build as
// many independent instances as they like).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "tandem_gateway"

// Values of the HTTP metrics' model label for requests no pool was routed
// for. Explicit values rather than "": Prometheus treats an empty label as
// an absent one, which a query selecting on model cannot tell apart from a
// series that never had the label.
const (
	// ModelNone: the route takes no model (probes, /v1/models, unmatched
	// paths), or the request was refused before its model was read
	// (malformed JSON, authentication, limits).
	ModelNone = "none"
	// ModelUnknown: the request named a model no pool serves (404
	// model_not_found). Every such name shares this one value, so a client
	// sending random names adds no series.
	ModelUnknown = "unknown"
)

// Values of limiter_rejections_total's limiter label: every one is exported
// at 0 from the start, so an alert or a panel on rejections has a series to
// read before the first 429, and "no rejections" reads as 0, not as no data.
const (
	LimiterRate     = "rate"      // the per-client request rate (per address, or per API key)
	LimiterInFlight = "in_flight" // the cap on API requests handled at once
)

// Metrics holds the gateway's collectors.
type Metrics struct {
	registry *prometheus.Registry

	// HTTP side. model is the routed pool's model (see ModelNone and
	// ModelUnknown for the requests that have none), so the label's values
	// are bounded by the configuration, whatever names clients send.
	HTTPRequests        *prometheus.CounterVec   // route, code, outcome, model
	HTTPRequestDuration *prometheus.HistogramVec // route, model
	HTTPInFlight        prometheus.Gauge
	LimiterRejections   *prometheus.CounterVec // limiter
	EmbeddingInputs     prometheus.Histogram
	EmbeddingTokens     prometheus.Counter

	// Upstream (gRPC) side. model is a pool's configured model (bounded by
	// the configuration), or "default" for the single-target pool.
	UpstreamCalls        *prometheus.CounterVec   // model, method, code
	UpstreamCallDuration *prometheus.HistogramVec // model, method
	UpstreamRetries      *prometheus.CounterVec   // model, method
	UpstreamInFlight     *prometheus.GaugeVec     // model, method
	UpstreamReady        *prometheus.GaugeVec     // model
}

// New creates the collectors and registers them, with the Go runtime and
// process collectors, on a new registry.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route, status code, outcome (ok or the error code returned) and routed model.",
		}, []string{"route", "code", "outcome", "model"}),
		HTTPRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to handle an HTTP request, by route and routed model.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "model"}),
		HTTPInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "http_requests_in_flight",
			Help: "API requests currently being handled.",
		}),
		LimiterRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "limiter_rejections_total",
			Help: "Requests rejected with 429 by an edge limiter (rate or in_flight).",
		}, []string{"limiter"}),
		EmbeddingInputs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "embedding_inputs_per_request",
			Help:    "Number of texts in accepted embeddings requests.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		EmbeddingTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "embedding_tokens_total",
			Help: "Tokens embedded, as reported by the core.",
		}),
		UpstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "upstream_calls_total",
			Help: "Calls to the core by pool model, method and final gRPC status code (after retries).",
		}, []string{"model", "method", "code"}),
		UpstreamCallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "upstream_call_duration_seconds",
			Help:    "Duration of calls to the core, retries included, by pool model and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"model", "method"}),
		UpstreamRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "upstream_retries_total",
			Help: "Retry attempts made by the gRPC retry policy, by pool model and method.",
		}, []string{"model", "method"}),
		UpstreamInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "upstream_in_flight",
			Help: "Calls to the model's core pool that have started and not yet ended (retries included), by pool model and method.",
		}, []string{"model", "method"}),
		UpstreamReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "upstream_ready",
			Help: "1 when at least one core of the model's pool reported SERVING at the last readiness check, else 0.",
		}, []string{"model"}),
	}
	for _, limiter := range []string{LimiterRate, LimiterInFlight} {
		m.LimiterRejections.WithLabelValues(limiter)
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPRequestDuration, m.HTTPInFlight, m.LimiterRejections,
		m.EmbeddingInputs, m.EmbeddingTokens,
		m.UpstreamCalls, m.UpstreamCallDuration, m.UpstreamRetries, m.UpstreamInFlight, m.UpstreamReady,
	)
	return m
}

// Handler serves the registry. The classic Prometheus text format stays the
// default; a scraper that asks for OpenMetrics (Accept:
// application/openmetrics-text) gets it, and with it the exemplars, which
// the classic text format cannot carry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry, EnableOpenMetrics: true})
}

// Gatherer exposes the registry to tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }
