package httpapi

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// Response headers that name the request's trace, so a user can find the
// trace of a slow or failed request. X-Trace-Id is the trace id alone, easy
// to paste into a search box. traceresponse is W3C Trace Context Level 2's
// response header: version-traceid-spanid-flags of the gateway's server
// span, whose sampled flag (01) says whether the trace was recorded. A
// response traceparent is deliberately not sent: traceparent is a request
// header, and a client that forwards headers could pick it up as its own
// parent.
const (
	headerTraceID       = "X-Trace-Id"
	headerTraceResponse = "traceresponse"
)

// Attributes the gateway adds to its server spans, next to otelhttp's HTTP
// ones. gen_ai.* follow the OpenTelemetry GenAI semantic conventions (still
// in development, so their names may change; the Go semconv packages no
// longer carry them, hence the literals). tandem.* are the gateway's own.
const (
	attrRequestID       = attribute.Key("tandem.request_id")
	attrErrorCode       = attribute.Key("tandem.error.code")
	attrInputCount      = attribute.Key("tandem.embeddings.input_count")
	attrOperationName   = attribute.Key("gen_ai.operation.name")
	attrRequestModel    = attribute.Key("gen_ai.request.model")
	attrResponseModel   = attribute.Key("gen_ai.response.model")
	attrEncodingFormats = attribute.Key("gen_ai.request.encoding_formats")
	attrInputTokens     = attribute.Key("gen_ai.usage.input_tokens")
)

// traceRequests gives every request a server span when tracing is on. The
// span continues the client's trace when the request has a traceparent
// header, and is named after the matched route ("POST /v1/embeddings", per
// the HTTP semantic conventions), never the raw path. otelhttp sets the
// span's status: Error for 5xx, unset for 4xx, which are the client's
// errors, not the server's.
//
// With tracing off there is no wrapper at all: requests take exactly the
// path they took before tracing existed.
func traceRequests(t telemetry.Tracing) func(http.Handler) http.Handler {
	if !t.Enabled() {
		return func(next http.Handler) http.Handler { return next }
	}
	startSpan := otelhttp.NewMiddleware("", // unused: the span is named by the route pattern
		otelhttp.WithTracerProvider(t.Provider),
		otelhttp.WithPropagators(t.Propagator),
	)
	return func(next http.Handler) http.Handler { return startSpan(exposeTrace(next)) }
}

// exposeTrace ties the server span to the request's other identifiers. It
// sets the trace headers before any handler runs, so every response gets
// them, errors included, and records the request id on the span.
func exposeTrace(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span := trace.SpanFromContext(r.Context())
		if sc := span.SpanContext(); sc.IsValid() {
			w.Header().Set(headerTraceID, sc.TraceID().String())
			w.Header().Set(headerTraceResponse, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-"+sc.TraceFlags().String())
		}
		if span.IsRecording() {
			span.SetAttributes(attrRequestID.String(requestid.FromContext(r.Context())))
		}
		next.ServeHTTP(w, r)
	})
}

// The helpers below check IsRecording first, so that an untraced or
// unsampled request does not even build the attributes.

// traceEmbeddingsRequest records a validated request on its span. It runs
// after the model was checked, so the model is a known name, not arbitrary
// client text.
func traceEmbeddingsRequest(ctx context.Context, req embeddingsRequest) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(
			attrOperationName.String("embeddings"),
			attrRequestModel.String(req.Model),
			attrInputCount.Int(len(req.Inputs)),
			attrEncodingFormats.StringSlice([]string{req.EncodingFormat}),
		)
	}
}

// traceEmbeddingsResult records the core's answer.
func traceEmbeddingsResult(ctx context.Context, res upstream.EmbedResult) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(
			attrResponseModel.String(res.Model),
			attrInputTokens.Int64(int64(res.TotalTokens)),
		)
	}
}

// traceError records an error response on the span: its API code always,
// and for a server error (5xx) also error.type and the error itself as an
// exception event, with the detail the client is not shown. The span's
// status is left to otelhttp, which sets Error from the 5xx status code
// when the handler returns (and would replace a description set here).
func traceError(ctx context.Context, e *apiError, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrErrorCode.String(e.Code))
	if e.Status >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(e.Code))
		span.RecordError(err)
	}
}
