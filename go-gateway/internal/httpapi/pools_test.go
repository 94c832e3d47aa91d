package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tandem-inference/tandem/go-gateway/internal/config"
	"github.com/tandem-inference/tandem/go-gateway/internal/health"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// Two models, two pools: the API in front of upstream.NewPools, each pool a
// fake core of its own precision, wired as main wires them.

const (
	fp32Model = fakecore.Alias
	int8Model = fakecore.Alias + "-int8"
)

func newPoolsServer(t *testing.T, pools ...config.Pool) *testServer {
	t.Helper()
	cfg := config.Default().Upstream
	cfg.Target, cfg.Pools = "", pools
	cfg.CallTimeout = 2 * time.Second
	cfg.RetryInitialBackoff, cfg.RetryMaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	m := metrics.New()
	ups, err := upstream.NewPools(cfg, config.Default().Limits, m, telemetry.Tracing{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = upstream.ClosePools(ups) })
	backends := make([]health.Backend, len(ups))
	api := make([]Pool, len(ups))
	for i, p := range ups {
		backends[i] = health.Backend{Model: p.Label(), Check: p.Client.CheckServing}
		api[i] = Pool{Model: p.Model, Core: p.Client, Models: p.Models}
	}
	readiness := health.NewReadiness(backends, time.Second, 0, func(model string, ready bool) {
		v := 0.0
		if ready {
			v = 1
		}
		m.UpstreamReady.WithLabelValues(model).Set(v)
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s := newTestServer(t, func(d *Deps) {
		d.Metrics = m
		d.Pools = api
		d.Readiness = readiness
	})
	s.metrics = m
	return s
}

func startPair(t *testing.T) (fp32, int8 *fakecore.Core, s *testServer) {
	t.Helper()
	fp32, int8 = fakecore.Start(t), fakecore.Start(t)
	int8.SetPrecision("int8")
	s = newPoolsServer(t,
		config.Pool{Model: fp32Model, Target: "passthrough:///" + fp32.Addr},
		config.Pool{Model: int8Model, Target: "passthrough:///" + int8.Addr},
	)
	return fp32, int8, s
}

func embedModel(s *testServer, model string) (*embeddingsResponse, int, string) {
	rec := s.postJSON(`{"model":"` + model + `","input":["hello world"]}`)
	if rec.Code != http.StatusOK {
		var e errorResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		return nil, rec.Code, deref(e.Error.Code)
	}
	var resp embeddingsResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	return &resp, rec.Code, ""
}

func TestPoolsRouteEachModelToItsOwnCores(t *testing.T) {
	fp32, int8, s := startPair(t)
	int8ID, _ := int8.Names()
	for _, tc := range []struct {
		name string
		core *fakecore.Core
		want string
	}{
		{fp32Model, fp32, fakecore.ModelID},
		{int8Model, int8, int8ID},
		// The cores' own ids, learnt from GetModelInfo, route too.
		{fakecore.ModelID, fp32, fakecore.ModelID},
		{int8ID, int8, int8ID},
	} {
		before := tc.core.EmbedCalls()
		resp, code, errCode := embedModel(s, tc.name)
		if code != http.StatusOK {
			t.Fatalf("model %s: %d %s", tc.name, code, errCode)
		}
		if resp.Model != tc.want || tc.core.EmbedCalls() != before+1 {
			t.Errorf("model %s: answered as %s, its pool's core saw %d new calls; want %s and 1",
				tc.name, resp.Model, tc.core.EmbedCalls()-before, tc.want)
		}
	}
}

func TestAnUnknownModelIs404AtOnce(t *testing.T) {
	fp32, int8, s := startPair(t)
	start := time.Now()
	rec := s.postJSON(`{"model":"gpt-4","input":["x"]}`)
	if rec.Code != http.StatusNotFound || deref(checkErrorShape(t, rec).Code) != codeModelNotFound {
		t.Fatalf("unknown model: %d %s", rec.Code, rec.Body)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("404 took %s", took)
	}
	if fp32.EmbedCalls()+int8.EmbedCalls() != 0 {
		t.Error("an unknown model reached a core")
	}
	if rec := s.do("GET", "/v1/models/gpt-4", ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET /v1/models/gpt-4: %d", rec.Code)
	}
}

func TestModelsListsEveryPool(t *testing.T) {
	_, int8, s := startPair(t)
	int8ID, _ := int8.Names()
	rec := s.do("GET", "/v1/models", "")
	var list modelList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 || len(list.Data) != 2 {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	for i, want := range []struct{ id, alias, precision string }{
		{fp32Model, fakecore.ModelID, "fp32"},
		{int8Model, int8ID, "int8"},
	} {
		got := list.Data[i]
		if got.ID != want.id || len(got.Aliases) != 1 || got.Aliases[0] != want.alias || got.Precision != want.precision ||
			got.Dimension != fakecore.Dimension || got.MaxInputs != 256 || got.MaxTextBytes != 8192 || !got.Ready {
			t.Errorf("entry %d = %+v, want %+v with the fake's dimension and limits, ready", i, got, want)
		}
	}
	rec = s.do("GET", "/v1/models/"+int8ID, "")
	var one modelObject
	if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil || rec.Code != 200 || one.ID != int8Model {
		t.Errorf("GET /v1/models/%s: %d %s", int8ID, rec.Code, rec.Body)
	}
}

func TestOnePoolDownFailsOnlyItsModel(t *testing.T) {
	_, int8, s := startPair(t)
	// Both pools answered once, so both descriptions are cached.
	for _, m := range []string{fp32Model, int8Model} {
		if _, code, errCode := embedModel(s, m); code != 200 {
			t.Fatalf("%s before the outage: %d %s", m, code, errCode)
		}
	}
	int8.Stop()

	for range 5 {
		if _, code, errCode := embedModel(s, int8Model); code != http.StatusServiceUnavailable {
			t.Errorf("int8 with its cores down: %d %s, want 503", code, errCode)
		}
		if _, code, errCode := embedModel(s, fp32Model); code != http.StatusOK {
			t.Errorf("fp32 with the other pool down: %d %s, want 200", code, errCode)
		}
	}

	rec := s.do("GET", "/readyz", "")
	var body probeResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	want := []modelReadiness{{fp32Model, "ready"}, {int8Model, "not_ready"}}
	if rec.Code != 200 || len(body.Models) != 2 || body.Models[0] != want[0] || body.Models[1] != want[1] {
		t.Errorf("readyz with one pool down: %d %s, want 200 with %v", rec.Code, rec.Body, want)
	}
	if up, down := testutil.ToFloat64(s.metrics.UpstreamReady.WithLabelValues(fp32Model)),
		testutil.ToFloat64(s.metrics.UpstreamReady.WithLabelValues(int8Model)); up != 1 || down != 0 {
		t.Errorf("tandem_gateway_upstream_ready = %v (fp32), %v (int8), want 1 and 0", up, down)
	}
	rec = s.do("GET", "/v1/models", "")
	var list modelList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 || len(list.Data) != 2 ||
		!list.Data[0].Ready || list.Data[1].Ready {
		t.Errorf("models with int8 down: %d %s, want both listed, int8 not ready", rec.Code, rec.Body)
	}
}

func TestAPoolDownSinceStartIsListedByItsConfiguredID(t *testing.T) {
	fp32 := fakecore.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	s := newPoolsServer(t,
		config.Pool{Model: fp32Model, Target: "passthrough:///" + fp32.Addr},
		config.Pool{Model: int8Model, Target: "passthrough:///" + gone},
	)

	rec := s.do("GET", "/v1/models", "")
	var list modelList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 || len(list.Data) != 2 {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	if got := list.Data[1]; got.ID != int8Model || got.Ready || got.Dimension != 0 {
		t.Errorf("never-seen pool listed as %+v, want its configured id, not ready, nothing else known", got)
	}
	if _, code, _ := embedModel(s, int8Model); code != http.StatusServiceUnavailable {
		t.Errorf("int8: %d, want 503", code)
	}
	if _, code, _ := embedModel(s, fp32Model); code != http.StatusOK {
		t.Errorf("fp32: %d, want 200", code)
	}
	// An unknown name asks the silent pool within aliasLookupTimeout only.
	start := time.Now()
	if _, code, errCode := embedModel(s, "nope"); code != http.StatusNotFound || errCode != codeModelNotFound {
		t.Errorf("unknown model: %d %s", code, errCode)
	}
	if took := time.Since(start); took > aliasLookupTimeout+time.Second {
		t.Errorf("unknown model with a silent pool took %s", took)
	}
}
