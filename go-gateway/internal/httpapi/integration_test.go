package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
	"github.com/tandem-inference/tandem/go-gateway/internal/config"
	"github.com/tandem-inference/tandem/go-gateway/internal/health"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// These tests put the API in front of the real gRPC client and an
// in-process fake core, so the whole path HTTP -> gRPC -> HTTP is exercised.

func newIntegrationServer(t testing.TB, addr string, callTimeout time.Duration) *testServer {
	t.Helper()
	return newTracedIntegrationServer(t, addr, callTimeout, telemetry.Tracing{})
}

// newTracedIntegrationServer is newIntegrationServer with tracing in the
// HTTP layer and the gRPC client.
func newTracedIntegrationServer(t testing.TB, addr string, callTimeout time.Duration, tracing telemetry.Tracing) *testServer {
	t.Helper()
	cfg := config.Default().Upstream
	cfg.Target, cfg.Addresses = "", []string{addr}
	cfg.CallTimeout = callTimeout
	cfg.RetryInitialBackoff, cfg.RetryMaxBackoff = 10*time.Millisecond, 50*time.Millisecond

	m := metrics.New()
	client, err := upstream.New(cfg, config.Default().Limits, m, tracing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	readiness := health.NewReadiness([]health.Backend{{Model: upstream.DefaultPoolLabel, Check: client.CheckServing}},
		time.Second, 0, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))

	s := newTestServer(t, func(d *Deps) {
		d.Metrics = m
		d.Pools = []Pool{{Core: client, Models: upstream.NewModelCache(client.FetchModelInfo, time.Minute)}}
		d.Readiness = readiness
		d.Tracing = tracing
	})
	s.metrics = m
	return s
}

func TestIntegrationEmbeddings(t *testing.T) {
	core := fakecore.Start(t)
	s := newIntegrationServer(t, core.Addr, 5*time.Second)

	rec := s.postJSON(`{"model":"all-MiniLM-L6-v2","input":["hello world","`+strings.Repeat("w ", 400)+`"]}`,
		requestid.Header, "it-1")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp floatResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 2 || len(resp.Data[0].Embedding) != fakecore.Dimension {
		t.Fatalf("response = %+v", resp)
	}
	if resp.Data[1].Truncated == nil || !*resp.Data[1].Truncated {
		t.Error("long input not marked truncated")
	}
	if st := rec.Header().Get("Server-Timing"); !strings.HasPrefix(st, "gateway;dur=") || !strings.Contains(st, "queue;dur=0.1") {
		t.Errorf("Server-Timing = %q, want the gateway's entry followed by the core's", st)
	}
	if calls := core.Calls(); len(calls) != 1 || calls[0].RequestID != "it-1" {
		t.Errorf("core calls = %+v, want one with request id it-1", calls)
	}
	if rec := s.do("GET", "/readyz", ""); rec.Code != 200 {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body)
	}
}

func TestIntegrationContextLengthExceeded(t *testing.T) {
	core := fakecore.Start(t)
	s := newIntegrationServer(t, core.Addr, 5*time.Second)

	rec := s.postJSON(`{"model":"all-MiniLM-L6-v2","truncate":false,"input":["ok","` + strings.Repeat("w ", 400) + `"]}`)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	e := checkErrorShape(t, rec)
	if deref(e.Code) != codeContextLengthExceeded || deref(e.Param) != "input[1]" {
		t.Errorf("code %q param %q, want context_length_exceeded input[1]", deref(e.Code), deref(e.Param))
	}
	if !strings.HasPrefix(e.Message, "input[1] has ") || !strings.Contains(e.Message, "tokens") {
		t.Errorf("message %q does not pass on the core's description in the API's terms", e.Message)
	}
}

func TestIntegrationCoreUnreachableIs503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := newIntegrationServer(t, addr, 5*time.Second)

	rec := s.postJSON(validBody)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", rec.Code, rec.Body)
	}
	checkErrorShape(t, rec)
	if rec := s.do("GET", "/readyz", ""); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz with no core: %d", rec.Code)
	}
}

func TestIntegrationSlowCoreIs504(t *testing.T) {
	core := fakecore.Start(t)
	core.SetEmbed(func(ctx context.Context, _ *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	s := newIntegrationServer(t, core.Addr, 200*time.Millisecond)

	done := make(chan int, 1)
	go func() { done <- s.postJSON(validBody).Code }()
	select {
	case code := <-done:
		if code != http.StatusGatewayTimeout {
			t.Errorf("status %d, want 504", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request against a slow core hung")
	}
}

func TestIntegrationReadinessFollowsCoreHealth(t *testing.T) {
	core := fakecore.Start(t)
	s := newIntegrationServer(t, core.Addr, 5*time.Second)

	waitForStatus := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			rec := s.do("GET", "/readyz", "")
			if rec.Code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz = %d %s, want %d", rec.Code, rec.Body, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitForStatus(200)
	core.SetServing(false)
	waitForStatus(503)
	core.SetServing(true)
	waitForStatus(200)
}
