package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// ExemplarTraceID is the exemplar label that names a trace, the name
// Grafana's exemplar links and Prometheus's documentation use.
const ExemplarTraceID = "trace_id"

// ObserveWithTrace observes v and, when ctx carries a sampled span, attaches
// its trace id as an exemplar, so a slow bucket on a dashboard leads to the
// trace of a request in it. Unsampled and untraced requests get a plain
// observation: their trace was not recorded, so an exemplar would lead
// nowhere. client_golang keeps the latest exemplar per bucket, so this costs
// no memory per request.
func ObserveWithTrace(ctx context.Context, o prometheus.Observer, v float64) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsValid() && sc.IsSampled() {
		eo.ObserveWithExemplar(v, prometheus.Labels{ExemplarTraceID: sc.TraceID().String()})
		return
	}
	o.Observe(v)
}
