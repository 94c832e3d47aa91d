package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// instrument's metrics: the model label of the HTTP metrics, bounded by the
// configuration, and the trace exemplars on their latency histograms.

const (
	httpRequestsMetric = "tandem_gateway_http_requests_total"
	httpDurationMetric = "tandem_gateway_http_request_duration_seconds"
	upstreamDuration   = "tandem_gateway_upstream_call_duration_seconds"
)

// httpModelLabels is every value of the model label among the HTTP metrics'
// series, with the number of series of each metric.
func httpModelLabels(t *testing.T, m *metrics.Metrics) (models []string, series map[string]int) {
	t.Helper()
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series = map[string]int{}
	for _, f := range families {
		if f.GetName() != httpRequestsMetric && f.GetName() != httpDurationMetric {
			continue
		}
		series[f.GetName()] = len(f.GetMetric())
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "model" && !slices.Contains(models, l.GetValue()) {
					models = append(models, l.GetValue())
				}
			}
		}
	}
	slices.Sort(models)
	return models, series
}

func requestsOf(m *metrics.Metrics, route, code, outcome, model string) float64 {
	return testutil.ToFloat64(m.HTTPRequests.WithLabelValues(route, code, outcome, model))
}

func TestTheModelLabelNamesTheRoutedPool(t *testing.T) {
	_, int8, s := startPair(t)
	int8ID, _ := int8.Names()
	for _, name := range []string{fp32Model, int8Model, int8ID} { // int8ID: routed by the core's own id
		if _, code, errCode := embedModel(s, name); code != http.StatusOK {
			t.Fatalf("model %s: %d %s", name, code, errCode)
		}
	}
	if _, code, _ := embedModel(s, "gpt-4"); code != http.StatusNotFound {
		t.Fatalf("gpt-4: %d", code)
	}
	s.postJSON(`{"input":["no model"]}`) // refused before any model is read
	s.do(http.MethodGet, "/v1/models", "")
	s.do(http.MethodGet, "/v1/models/"+int8Model, "")
	s.do(http.MethodGet, "/v1/models/gpt-4", "")
	s.do(http.MethodGet, "/healthz", "")
	s.do(http.MethodGet, "/nowhere", "")

	for _, c := range []struct {
		route, code, outcome, model string
		want                        float64
	}{
		{"embeddings", "200", "ok", fp32Model, 1},
		{"embeddings", "200", "ok", int8Model, 2}, // by its configured id, whatever name routed it
		{"embeddings", "404", codeModelNotFound, metrics.ModelUnknown, 1},
		{"embeddings", "400", codeMissingParameter, metrics.ModelNone, 1},
		{"models", "200", "ok", metrics.ModelNone, 1},
		{"model", "200", "ok", int8Model, 1},
		{"model", "404", codeModelNotFound, metrics.ModelUnknown, 1},
		{"healthz", "200", "ok", metrics.ModelNone, 1},
		{"unmatched", "404", codeNotFound, metrics.ModelNone, 1},
	} {
		if got := requestsOf(s.metrics, c.route, c.code, c.outcome, c.model); got != c.want {
			t.Errorf("%s{route=%s,code=%s,outcome=%s,model=%s} = %v, want %v",
				httpRequestsMetric, c.route, c.code, c.outcome, c.model, got, c.want)
		}
	}
	models, _ := httpModelLabels(t, s.metrics)
	if want := []string{fp32Model, int8Model, metrics.ModelNone, metrics.ModelUnknown}; !slices.Equal(models, slices.Sorted(slices.Values(want))) {
		t.Errorf("model label values = %v, want %v", models, want)
	}
	// The histogram carries the same label: embeddings under 4 models,
	// model under 2, models, healthz and unmatched under none.
	if n := testutil.CollectAndCount(s.metrics.HTTPRequestDuration, httpDurationMetric); n != 9 {
		t.Errorf("%d duration series, want 9", n)
	}
}

func TestTheSinglePoolIsLabelledDefault(t *testing.T) {
	s := newTestServer(t) // one unnamed pool, which takes every name to its cores
	if rec := s.postJSON(validBody); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// A name its cores do not serve is found out after routing: unknown,
	// not default.
	if rec := s.postJSON(`{"model":"gpt-4","input":["x"]}`); rec.Code != http.StatusNotFound {
		t.Fatalf("gpt-4: %d %s", rec.Code, rec.Body)
	}
	if got := requestsOf(s.metrics, "embeddings", "200", "ok", upstream.DefaultPoolLabel); got != 1 {
		t.Errorf("ok requests of the default pool = %v, want 1", got)
	}
	if got := requestsOf(s.metrics, "embeddings", "404", codeModelNotFound, metrics.ModelUnknown); got != 1 {
		t.Errorf("unknown-model requests = %v, want 1", got)
	}
	// A failure found against the routed model (here its dimension) keeps
	// the pool's label.
	if rec := s.postJSON(`{"model":"all-MiniLM-L6-v2","input":["x"],"dimensions":10}`); rec.Code != http.StatusBadRequest {
		t.Fatalf("wrong dimensions: %d %s", rec.Code, rec.Body)
	}
	if got := requestsOf(s.metrics, "embeddings", "400", codeInvalidValue, upstream.DefaultPoolLabel); got != 1 {
		t.Errorf("invalid_value requests of the default pool = %v, want 1", got)
	}
}

// TestRandomModelNamesAddNoSeries is the attacker's test of the model label:
// a client naming 1,000 distinct models, some with the characters a label
// value must escape, adds no series after the first unknown one, and the
// next valid request succeeds.
func TestRandomModelNamesAddNoSeries(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T) *testServer
	}{
		{"named pools", func(t *testing.T) *testServer { _, _, s := startPair(t); return s }},
		{"single pool", func(t *testing.T) *testServer { return newTestServer(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.setup(t)
			if _, code, _ := embedModel(s, "first-unknown"); code != http.StatusNotFound {
				t.Fatalf("first unknown model: %d", code)
			}
			_, before := httpModelLabels(t, s.metrics)
			logsBefore := len(s.logs.String())
			var heapBefore runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&heapBefore)

			deadline := time.Now().Add(30 * time.Second)
			for i := range 1000 {
				if time.Now().After(deadline) {
					t.Fatalf("only %d requests in 30 s", i)
				}
				random := make([]byte, 32)
				_, _ = rand.Read(random)
				name := hex.EncodeToString(random) + `"}\n{le="1"` + strings.Repeat("é", i%64)
				body, _ := json.Marshal(map[string]any{"model": name, "input": []string{"x"}})
				rec := s.postJSON(string(body))
				if rec.Code != http.StatusNotFound || deref(checkErrorShape(t, rec).Code) != codeModelNotFound {
					t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
				}
			}

			models, after := httpModelLabels(t, s.metrics)
			if !maps.Equal(before, after) {
				t.Errorf("series before %v, after 1,000 random models %v: want no new series", before, after)
			}
			if got := requestsOf(s.metrics, "embeddings", "404", codeModelNotFound, metrics.ModelUnknown); got != 1001 {
				t.Errorf("unknown-model requests = %v, want 1001", got)
			}
			for _, v := range models {
				if v != metrics.ModelUnknown && v != metrics.ModelNone && v != fp32Model && v != upstream.DefaultPoolLabel {
					t.Errorf("model label value %q is not a configured one", v)
				}
			}
			logged := len(s.logs.String()) - logsBefore
			var heapAfter runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&heapAfter)
			// Nothing is kept per name: apart from the access log, which
			// this test keeps in memory, the live heap stays within 256 KiB
			// (a series pair per name would take 2.1 MB for 1,000 names,
			// measured with client_golang v1.25.0).
			grown := int64(heapAfter.HeapAlloc) - int64(heapBefore.HeapAlloc) - int64(logged)
			t.Logf("series %v; live heap %+d bytes over 1,000 random model names, besides %d bytes of access log", after, grown, logged)
			if grown > 256<<10 {
				t.Errorf("live heap grew by %d bytes over 1,000 random model names", grown)
			}
			if rec := s.postJSON(`{"model":"` + fakecore.Alias + `","input":["still served"]}`); rec.Code != http.StatusOK {
				t.Errorf("next valid request: %d %s", rec.Code, rec.Body)
			}
		})
	}
}

// exemplarLine is an OpenMetrics bucket line with a trace exemplar.
var exemplarLine = regexp.MustCompile(`^(\w+)_bucket\{([^}]*)\} \S+ # \{trace_id="([0-9a-f]{32})"\} \S+ \S+$`)

// scrapeExemplars scrapes the metrics as OpenMetrics and returns the trace
// ids of each histogram's exemplars.
func scrapeExemplars(t *testing.T, m *metrics.Metrics) map[string][]string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/openmetrics-text") {
		t.Fatalf("scrape answered %q, want OpenMetrics", rec.Header().Get("Content-Type"))
	}
	found := map[string][]string{}
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if !strings.Contains(line, " # {") {
			continue
		}
		match := exemplarLine.FindStringSubmatch(line)
		if match == nil {
			t.Fatalf("malformed exemplar line %q", line)
		}
		found[match[1]] = append(found[match[1]], match[3])
	}
	return found
}

func TestASampledRequestLeavesItsTraceAsExemplar(t *testing.T) {
	core := fakecore.Start(t)
	tracing, exporter := newTestTracing(t)
	s := newTracedIntegrationServer(t, core.Addr, 5*time.Second, tracing)

	if rec := s.postJSON(validBody); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	s.do(http.MethodGet, "/healthz", "") // probes make no spans, so no exemplars
	traceID := findSpan(t, exporter.GetSpans(), embeddingsSpan).SpanContext.TraceID().String()

	got := scrapeExemplars(t, s.metrics)
	if ids := got[httpDurationMetric]; !slices.Equal(ids, []string{traceID}) {
		t.Errorf("%s exemplars = %v, want the request's trace %s once", httpDurationMetric, ids, traceID)
	}
	// Both calls the request made (GetModelInfo, then Embed) carry it.
	if ids := got[upstreamDuration]; len(ids) != 2 || ids[0] != traceID || ids[1] != traceID {
		t.Errorf("%s exemplars = %v, want the request's trace %s on both calls", upstreamDuration, ids, traceID)
	}
	if len(got) != 2 {
		t.Errorf("exemplars on %v, want only the two latency histograms", slices.Sorted(maps.Keys(got)))
	}
}

func TestUnsampledAndUntracedRequestsLeaveNoExemplar(t *testing.T) {
	core := fakecore.Start(t)
	tracing, exporter := newTestTracing(t)
	traced := newTracedIntegrationServer(t, core.Addr, 5*time.Second, tracing)
	// The client decided not to record this trace; the gateway follows.
	if rec := traced.postJSON(validBody, "traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-00"); rec.Code != http.StatusOK {
		t.Fatalf("unsampled: %d %s", rec.Code, rec.Body)
	}
	if spans := exporter.GetSpans(); len(spans) != 0 {
		t.Fatalf("spans = %v, want none", spanNames(spans))
	}
	if got := scrapeExemplars(t, traced.metrics); len(got) != 0 {
		t.Errorf("unsampled request left exemplars %v", got)
	}

	untraced := newIntegrationServer(t, core.Addr, 5*time.Second)
	// Tracing off: a client's sampled traceparent is not ours to point at.
	if rec := untraced.postJSON(validBody, "traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01"); rec.Code != http.StatusOK {
		t.Fatalf("untraced: %d %s", rec.Code, rec.Body)
	}
	if got := scrapeExemplars(t, untraced.metrics); len(got) != 0 {
		t.Errorf("untraced request left exemplars %v", got)
	}
	if n := testutil.CollectAndCount(untraced.metrics.HTTPRequestDuration, httpDurationMetric); n != 1 {
		t.Errorf("untraced request observed in %d series, want 1", n)
	}
}
