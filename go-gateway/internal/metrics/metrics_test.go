package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

const openMetrics = "application/openmetrics-text; version=1.0.0"

var (
	sampledTrace = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	otherTrace   = trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	spanID       = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

// withSpan is a context carrying a span of traceID, sampled or not, as the
// HTTP server span would put there.
func withSpan(traceID trace.TraceID, sampled bool) context.Context {
	flags := trace.TraceFlags(0)
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: flags,
	}))
}

// scrape asks the handler for /metrics with the given Accept header ("" for
// none, as a curl or an old Prometheus sends).
func scrape(t *testing.T, h http.Handler, accept string) (contentType, body string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return rec.Header().Get("Content-Type"), string(b)
}

// exemplarLine is an OpenMetrics sample line with an exemplar:
// name{labels} value # {exemplar labels} value [timestamp].
var exemplarLine = regexp.MustCompile(`^(\w+)\{([^}]*)\} \S+ # \{trace_id="([0-9a-f]{32})"\} \S+( \S+)?$`)

// exemplars maps each exemplar's trace id to the series lines carrying it,
// for the series of metric (its _bucket lines).
func exemplars(t *testing.T, text, metric string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.Contains(line, " # {") {
			continue
		}
		m := exemplarLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("malformed exemplar line %q", line)
		}
		if m[1] == metric+"_bucket" {
			found[m[3]] = append(found[m[3]], line)
		}
	}
	return found
}

func TestObserveWithTraceLeavesASampledTracesIDAsExemplar(t *testing.T) {
	m := New()
	ObserveWithTrace(withSpan(sampledTrace, true), m.HTTPRequestDuration.WithLabelValues("embeddings", "m"), 0.003)
	ObserveWithTrace(withSpan(otherTrace, false), m.HTTPRequestDuration.WithLabelValues("embeddings", "m"), 0.7)
	ObserveWithTrace(context.Background(), m.HTTPRequestDuration.WithLabelValues("embeddings", "m"), 20)
	ObserveWithTrace(withSpan(sampledTrace, true), m.UpstreamCallDuration.WithLabelValues("m", "Embed"), 0.002)

	contentType, text := scrape(t, m.Handler(), openMetrics)
	if !strings.HasPrefix(contentType, "application/openmetrics-text") {
		t.Fatalf("Content-Type = %q, want OpenMetrics when asked", contentType)
	}
	for _, metric := range []string{"tandem_gateway_http_request_duration_seconds", "tandem_gateway_upstream_call_duration_seconds"} {
		got := exemplars(t, text, metric)
		if len(got) != 1 || len(got[sampledTrace.String()]) != 1 {
			t.Errorf("%s exemplars = %v, want one, in one bucket, naming the sampled trace %s", metric, got, sampledTrace)
		}
	}
	// The exemplar sits in the bucket of its own observation.
	want := `tandem_gateway_http_request_duration_seconds_bucket{model="m",route="embeddings",le="0.005"} 1 # {trace_id="` + sampledTrace.String() + `"} 0.003`
	if !strings.Contains(text, want) {
		t.Errorf("no line starting %q in\n%s", want, text)
	}
	// The unsampled and the untraced observations are counted all the same.
	if !strings.Contains(text, `tandem_gateway_http_request_duration_seconds_count{model="m",route="embeddings"} 3`) {
		t.Errorf("count of the three observations missing:\n%s", text)
	}
}

func TestTheClassicTextFormatStaysTheDefault(t *testing.T) {
	m := New()
	ObserveWithTrace(withSpan(sampledTrace, true), m.HTTPRequestDuration.WithLabelValues("embeddings", "m"), 0.003)
	for _, accept := range []string{"", "text/plain", "*/*"} {
		contentType, text := scrape(t, m.Handler(), accept)
		if !strings.HasPrefix(contentType, "text/plain; version=0.0.4") {
			t.Errorf("Accept %q: Content-Type = %q, want the classic text format", accept, contentType)
		}
		if strings.Contains(text, "# {") || strings.Contains(text, sampledTrace.String()) || strings.Contains(text, "# EOF") {
			t.Errorf("Accept %q: the classic format carries an exemplar or OpenMetrics syntax:\n%s", accept, text)
		}
		if !strings.Contains(text, `tandem_gateway_http_request_duration_seconds_count{model="m",route="embeddings"} 1`) {
			t.Errorf("Accept %q: the observation is missing:\n%s", accept, text)
		}
	}
}

func TestALaterSampledObservationReplacesTheBucketsExemplar(t *testing.T) {
	// client_golang keeps one exemplar per bucket, the latest: memory does
	// not grow with traffic.
	m := New()
	h := m.HTTPRequestDuration.WithLabelValues("embeddings", "m")
	for i := range 1000 {
		id := sampledTrace
		id[15] = byte(i)
		ObserveWithTrace(withSpan(id, true), h, 0.003)
	}
	ObserveWithTrace(withSpan(otherTrace, true), h, 0.003)
	_, text := scrape(t, m.Handler(), openMetrics)
	got := exemplars(t, text, "tandem_gateway_http_request_duration_seconds")
	if len(got) != 1 || got[otherTrace.String()] == nil {
		t.Errorf("exemplars = %v, want only the latest trace %s", got, otherTrace)
	}
}

// A gateway that has rejected nothing still exports every limiter's counter,
// at 0: rate(...) over it is 0, where a missing series would read as "no
// data" on the dashboard and leave an alert on rejections unable to fire.
func TestEveryLimitersRejectionsAreExportedAtZeroFromTheStart(t *testing.T) {
	_, body := scrape(t, New().Handler(), "")
	for _, limiter := range []string{LimiterRate, LimiterInFlight} {
		line := `tandem_gateway_limiter_rejections_total{limiter="` + limiter + `"} 0`
		if !strings.Contains(body, line+"\n") {
			t.Errorf("want %q in a fresh scrape; got:\n%s", line, grepLines(body, "limiter_rejections"))
		}
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
