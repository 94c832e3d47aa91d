package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/auth"
	"github.com/tandem-inference/tandem/go-gateway/internal/health"
	"github.com/tandem-inference/tandem/go-gateway/internal/limits"
	"github.com/tandem-inference/tandem/go-gateway/internal/logging"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

var testModel = upstream.ModelInfo{
	ID:                 fakecore.ModelID,
	Aliases:            []string{fakecore.Alias},
	Dimension:          fakecore.Dimension,
	MaxTokens:          fakecore.MaxTokens,
	MaxTextsPerRequest: 256,
	MaxTextBytes:       8192,
	Precision:          "fp32",
}

// stubCore is an Embedder that answers like the fake core, or as scripted.
type stubCore struct {
	mu    sync.Mutex
	embed func(context.Context, upstream.EmbedRequest) (upstream.EmbedResult, error)
	last  upstream.EmbedRequest
	ids   []string
}

func (s *stubCore) Embed(ctx context.Context, req upstream.EmbedRequest) (upstream.EmbedResult, error) {
	s.mu.Lock()
	s.last = req
	s.ids = append(s.ids, requestid.FromContext(ctx))
	f := s.embed
	s.mu.Unlock()
	if f != nil {
		return f(ctx, req)
	}
	return fakeResult(req), nil
}

func (s *stubCore) set(f func(context.Context, upstream.EmbedRequest) (upstream.EmbedResult, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embed = f
}

func (s *stubCore) lastRequest() upstream.EmbedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *stubCore) requestIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

// fakeResult mirrors fakecore.DefaultEmbed without gRPC.
func fakeResult(req upstream.EmbedRequest) upstream.EmbedResult {
	res := upstream.EmbedResult{Model: fakecore.ModelID, ServerTiming: "inference;dur=1.0"}
	for _, text := range req.Texts {
		tokens := len(strings.Fields(text)) + 2
		truncated := tokens > fakecore.MaxTokens
		tokens = min(tokens, fakecore.MaxTokens)
		res.Embeddings = append(res.Embeddings, upstream.Embedding{
			Values: fakecore.Vector(text), TokenCount: uint32(tokens), Truncated: truncated,
		})
		res.TotalTokens += uint64(tokens)
	}
	return res
}

type stubModels struct {
	err         error
	invalidated atomic.Int32
}

func (s *stubModels) Get(context.Context) (upstream.ModelInfo, error) {
	if s.err != nil {
		return upstream.ModelInfo{}, s.err
	}
	return testModel, nil
}

func (s *stubModels) Peek() (upstream.ModelInfo, bool) { return testModel, s.err == nil }

func (s *stubModels) Invalidate() { s.invalidated.Add(1) }

type stubReadiness struct{ report health.Report }

func (s *stubReadiness) Check(context.Context) health.Report { return s.report }

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	handler http.Handler
	core    *stubCore
	models  *stubModels
	ready   *stubReadiness
	metrics *metrics.Metrics
	logs    *syncBuffer
}

// newTestServer builds the API around stubs; configure adjusts the
// dependencies before the handler is built.
func newTestServer(t testing.TB, configure ...func(*Deps)) *testServer {
	t.Helper()
	s := &testServer{
		core:    &stubCore{},
		models:  &stubModels{},
		ready:   &stubReadiness{report: health.Report{Ready: true}},
		metrics: metrics.New(),
		logs:    &syncBuffer{},
	}
	d := Deps{
		Logger:      logging.New(s.logs, slog.LevelDebug),
		Metrics:     s.metrics,
		Pools:       []Pool{{Core: s.core, Models: s.models}},
		Readiness:   s.ready,
		Keys:        auth.NewKeySet(nil),
		RateLimiter: limits.NewRateLimiter(limits.RateConfig{}),
		ClientIP:    limits.NewClientIP(nil, limits.HeaderXForwardedFor),
		InFlight:    limits.NewInFlight(0),
		Limits: Limits{
			MaxBodyBytes:   1 << 20,
			RequestTimeout: 10 * time.Second,
			Input:          InputLimits{MaxInputs: 256, MaxTextBytes: 8192},
		},
	}
	for _, f := range configure {
		f(&d)
	}
	s.handler = NewServer(d)
	return s
}

// do sends a request; headers are name, value pairs.
func (s *testServer) do(method, target, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

// postJSON posts body to /v1/embeddings as JSON.
func (s *testServer) postJSON(body string, headers ...string) *httptest.ResponseRecorder {
	return s.do(http.MethodPost, "/v1/embeddings", body, append([]string{"Content-Type", "application/json"}, headers...)...)
}

const validBody = `{"model":"all-MiniLM-L6-v2","input":["hello world"]}`

// checkErrorShape verifies OpenAI's error shape exactly: an "error" object
// with a non-empty string message, a string type, and param and code that
// are strings or null, and nothing else. It returns the decoded body.
func checkErrorShape(t testing.TB, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &outer); err != nil || len(outer) != 1 || outer["error"] == nil {
		t.Fatalf("body is not {\"error\": ...}: %s", rec.Body.String())
	}
	var inner map[string]any
	if err := json.Unmarshal(outer["error"], &inner); err != nil {
		t.Fatalf("error is not an object: %s", rec.Body.String())
	}
	if len(inner) != 4 {
		t.Errorf("error has fields %v, want message, type, param, code", inner)
	}
	msg, ok := inner["message"].(string)
	if !ok || msg == "" {
		t.Errorf("message = %v, want a non-empty string", inner["message"])
	}
	if _, ok := inner["type"].(string); !ok {
		t.Errorf("type = %v, want a string", inner["type"])
	}
	for _, k := range []string{"param", "code"} {
		v, present := inner[k]
		if _, isString := v.(string); !present || (v != nil && !isString) {
			t.Errorf("%s = %v, want a string or null", k, v)
		}
	}
	var e errorResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	return e.Error
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
