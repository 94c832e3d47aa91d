// Package telemetry sets up the gateway's tracing: the OpenTelemetry SDK,
// configured by the standard OTEL_* environment variables, exporting spans
// over OTLP/gRPC. Tracing is on when an OTLP endpoint is configured. Without
// one, Setup installs nothing: no SDK, no exporter, and the HTTP and gRPC
// layers skip their instrumentation, so tracing costs nothing when off.
//
// Setup only builds things. Making them global (otel.SetTracerProvider and
// friends) is left to main, which does it once; the rest of the gateway gets
// a Tracing value passed in, so tests can use their own in-memory exporter
// without touching globals.
package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is the service.name of the gateway's spans unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name it otherwise.
const DefaultServiceName = "tandem-gateway"

// Tracing is what the HTTP and gRPC layers need to trace requests. The zero
// value means tracing is off.
type Tracing struct {
	// Provider creates spans. Nil means tracing is off, and then nothing is
	// instrumented at all.
	Provider trace.TracerProvider
	// Propagator reads and writes W3C trace context (traceparent,
	// tracestate) and baggage.
	Propagator propagation.TextMapPropagator

	shutdown func(context.Context) error
}

// Enabled reports whether requests are traced.
func (t Tracing) Enabled() bool { return t.Provider != nil }

// Shutdown exports the spans still buffered and stops the exporter. Call it
// once, after the servers have finished their last requests, with a
// deadline: a collector that is down would otherwise hold up the exit for
// the exporter's full retry budget. Without tracing it does nothing.
func (t Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// NewPropagator returns the W3C propagator the gateway uses on both sides:
// trace context and baggage, in and out.
func NewPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup builds tracing from the environment. getenv decides whether tracing
// is on (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, OTEL_SDK_DISABLED,
// OTEL_TRACES_EXPORTER) and which sampler to use (OTEL_TRACES_SAMPLER[_ARG]).
// The rest is read by the OpenTelemetry libraries themselves, from the
// process environment: the exporter's OTEL_EXPORTER_OTLP_* settings
// (endpoint, INSECURE, HEADERS, TIMEOUT, certificates, compression), the
// resource's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, and the batch
// processor's OTEL_BSP_*. In production getenv is os.Getenv, so both agree.
//
// serviceVersion becomes service.version; empty leaves it out. Invalid
// settings are returned as one error listing every problem.
func Setup(ctx context.Context, getenv func(string) string, serviceVersion string) (Tracing, error) {
	t := Tracing{Propagator: NewPropagator()}
	s, err := loadSettings(getenv)
	if err != nil {
		return t, err
	}
	if !s.enabled {
		return t, nil
	}

	res, err := newResource(ctx, serviceVersion)
	if err != nil {
		return t, err
	}
	// New does not connect: the gRPC connection to the collector is made
	// on the first export, so a collector that is down never delays
	// start-up.
	exporter, err := otlptracegrpc.New(ctx)
	if err != nil {
		return t, fmt.Errorf("create the OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		// Batching takes export off the request path: ending a span only
		// queues it, and a full queue drops spans rather than block.
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(s.sampler),
	)
	t.Provider, t.shutdown = tp, tp.Shutdown
	return t, nil
}

// newResource describes the process: the default name and the version,
// then the SDK's own attributes, then OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES, later ones winning.
func newResource(ctx context.Context, serviceVersion string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(DefaultServiceName)}
	if serviceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(serviceVersion))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		// For example a malformed OTEL_RESOURCE_ATTRIBUTES: spans would be
		// exported without the attributes someone meant to search by.
		return nil, fmt.Errorf("build the trace resource: %w", err)
	}
	return res, nil
}
