package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
	"github.com/tandem-inference/tandem/go-gateway/internal/auth"
	"github.com/tandem-inference/tandem/go-gateway/internal/health"
	"github.com/tandem-inference/tandem/go-gateway/internal/limits"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// floatResponse is the embeddings response with float vectors.
type floatResponse struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
		Truncated *bool     `json:"truncated"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func TestEmbeddingsFloatEncoding(t *testing.T) {
	s := newTestServer(t)
	rec := s.postJSON(`{"model":"sentence-transformers/all-MiniLM-L6-v2","input":["hello world","second text here"]}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp floatResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Object != "list" || resp.Model != fakecore.ModelID || len(resp.Data) != 2 {
		t.Fatalf("response = %+v", resp)
	}
	for i, text := range []string{"hello world", "second text here"} {
		d := resp.Data[i]
		if d.Object != "embedding" || d.Index != i || d.Truncated != nil {
			t.Errorf("data[%d] = %+v", i, d)
		}
		// The JSON numbers must read back as exactly the core's float32s.
		want := fakecore.Vector(text)
		if len(d.Embedding) != len(want) {
			t.Fatalf("data[%d] has %d values, want %d", i, len(d.Embedding), len(want))
		}
		for j := range want {
			if math.Float32bits(d.Embedding[j]) != math.Float32bits(want[j]) {
				t.Fatalf("data[%d][%d] = %v, want %v", i, j, d.Embedding[j], want[j])
			}
		}
	}
	if resp.Usage.PromptTokens != 4+5 || resp.Usage.TotalTokens != 4+5 {
		t.Errorf("usage = %+v, want 9 tokens", resp.Usage)
	}
}

func TestEmbeddingsBase64Encoding(t *testing.T) {
	s := newTestServer(t)
	rec := s.postJSON(`{"model":"all-MiniLM-L6-v2","input":"hello world","encoding_format":"base64"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(resp.Data[0].Embedding)
	if err != nil {
		t.Fatalf("embedding is not base64: %v", err)
	}
	want := fakecore.Vector("hello world")
	if len(raw) != 4*len(want) {
		t.Fatalf("decoded %d bytes, want %d", len(raw), 4*len(want))
	}
	for i, w := range want {
		if got := binary.LittleEndian.Uint32(raw[4*i:]); got != math.Float32bits(w) {
			t.Fatalf("value %d = %v, want %v", i, math.Float32frombits(got), w)
		}
	}
}

func TestEncodeFloat32Base64(t *testing.T) {
	tests := []struct {
		in   []float32
		want string
	}{
		{nil, ""},
		{[]float32{1}, "AACAPw=="},           // 0x3f800000 little-endian
		{[]float32{-2, 0.5}, "AAAAwAAAAD8="}, // 0xc0000000, 0x3f000000
	}
	for _, tt := range tests {
		if got := encodeFloat32Base64(tt.in); got != tt.want {
			t.Errorf("encodeFloat32Base64(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncatedInputsAreMarked(t *testing.T) {
	s := newTestServer(t)
	long := strings.Repeat("word ", 300)
	rec := s.postJSON(`{"model":"all-MiniLM-L6-v2","input":["short","` + long + `"]}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp floatResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Data[0].Truncated != nil {
		t.Error(`"truncated" present on an input that was not truncated`)
	}
	if resp.Data[1].Truncated == nil || !*resp.Data[1].Truncated {
		t.Error(`"truncated": true missing on a truncated input`)
	}
	if !s.core.lastRequest().Truncate {
		t.Error("truncation is not the default")
	}
}

func TestTruncateFalseAsksTheCoreToReject(t *testing.T) {
	s := newTestServer(t)
	rec := s.postJSON(`{"model":"all-MiniLM-L6-v2","input":"hi","truncate":false}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := s.core.lastRequest(); got.Truncate || got.Model != fakecore.ModelID {
		t.Errorf("core request = %+v, want Truncate false and the canonical model id", got)
	}
}

func TestServerTimingPutsTheGatewayFirst(t *testing.T) {
	s := newTestServer(t)
	rec := s.postJSON(validBody)
	st := rec.Header().Get("Server-Timing")
	if !strings.HasPrefix(st, "gateway;dur=") || !strings.HasSuffix(st, ", inference;dur=1.0") {
		t.Errorf("Server-Timing = %q", st)
	}
}

// Every bad request gets a 4xx in the error shape, and the server keeps
// working: the next valid request succeeds.
func TestBadRequestsGetShapedErrors(t *testing.T) {
	tooMany := `"x"` + strings.Repeat(`,"x"`, 256)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		headers    []string
		wantStatus int
		wantCode   string
		wantParam  string
	}{
		{"empty input list", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":[]}`, nil, 400, codeInvalidValue, "input"},
		{"empty string", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":""}`, nil, 400, codeInvalidValue, "input"},
		{"non-string item", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":["a",{}]}`, nil, 400, codeInvalidType, "input[1]"},
		{"token ids", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":[1,2,3]}`, nil, 400, codeUnsupportedInput, "input"},
		{"token id lists", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":[[1,2]]}`, nil, 400, codeUnsupportedInput, "input[0]"},
		{"too many items", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":[` + tooMany + `]}`, nil, 400, codeTooManyInputs, "input"},
		{"text too large", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":["` + strings.Repeat("a", 8193) + `"]}`, nil, 400, codeInputTooLarge, "input[0]"},
		{"invalid JSON", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2",`, nil, 400, codeInvalidJSON, ""},
		{"trailing garbage", "POST", "/v1/embeddings", validBody + `]`, nil, 400, codeInvalidJSON, ""},
		{"unknown field", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":"a","foo":1}`, nil, 400, codeUnknownParameter, "foo"},
		{"missing model", "POST", "/v1/embeddings", `{"input":"a"}`, nil, 400, codeMissingParameter, "model"},
		{"missing input", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2"}`, nil, 400, codeMissingParameter, "input"},
		{"unknown model", "POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"a"}`, nil, 404, codeModelNotFound, "model"},
		{"wrong dimensions", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":"a","dimensions":512}`, nil, 400, codeInvalidValue, "dimensions"},
		{"bad encoding_format", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":"a","encoding_format":"binary"}`, nil, 400, codeInvalidValue, "encoding_format"},
		{"wrong content type", "POST", "/v1/embeddings", validBody, []string{"Content-Type", "text/plain"}, 415, codeUnsupportedMediaType, ""},
		{"form content type", "POST", "/v1/embeddings", validBody, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, codeUnsupportedMediaType, ""},
		{"body over the limit", "POST", "/v1/embeddings", `{"model":"all-MiniLM-L6-v2","input":"` + strings.Repeat("a", 2<<20) + `"}`, nil, 413, codeRequestTooLarge, ""},
		{"GET on embeddings", "GET", "/v1/embeddings", "", nil, 405, codeMethodNotAllowed, ""},
		{"DELETE on models", "DELETE", "/v1/models", "", nil, 405, codeMethodNotAllowed, ""},
		{"POST on healthz", "POST", "/healthz", "", nil, 405, codeMethodNotAllowed, ""},
		{"unknown path", "GET", "/v1/completions", "", nil, 404, codeNotFound, ""},
	}
	s := newTestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := tt.headers
			if headers == nil {
				headers = []string{"Content-Type", "application/json"}
			}
			rec := s.do(tt.method, tt.path, tt.body, headers...)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			e := checkErrorShape(t, rec)
			if deref(e.Code) != tt.wantCode || deref(e.Param) != tt.wantParam {
				t.Errorf("code %q param %q, want %q %q (%s)", deref(e.Code), deref(e.Param), tt.wantCode, tt.wantParam, e.Message)
			}
			if tt.wantStatus == 405 && rec.Header().Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}

			if next := s.postJSON(validBody); next.Code != http.StatusOK {
				t.Errorf("the next valid request failed: %d %s", next.Code, next.Body)
			}
		})
	}
}

func TestBodyOverTheLimitWithoutContentLength(t *testing.T) {
	s := newTestServer(t, func(d *Deps) { d.Limits.MaxBodyBytes = 1024 })
	req := httptest.NewRequest(http.MethodPost, "/v1/embeddings", strings.NewReader(`{"input":"`+strings.Repeat("a", 4096)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1 // chunked: only the reader can tell
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", rec.Code, rec.Body)
	}
	checkErrorShape(t, rec)
}

func TestUpstreamErrorsThroughTheHandler(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantCode       string
		wantParam      string
		wantRetryAfter string
	}{
		{"context length", &upstream.Error{Kind: upstream.KindInvalid, Reason: contractv1.ErrorReason_ERROR_REASON_CONTEXT_LENGTH_EXCEEDED,
			Violations: []upstream.FieldViolation{{Field: "texts", Index: 0, Description: "has 300 tokens; the model takes at most 256"}}},
			400, codeContextLengthExceeded, "input[0]", ""},
		{"overloaded", &upstream.Error{Kind: upstream.KindOverloaded, RetryDelay: 3 * time.Second}, 429, codeUpstreamOverloaded, "", "3"},
		{"unavailable", &upstream.Error{Kind: upstream.KindUnavailable}, 503, codeUpstreamUnavailable, "", ""},
		{"timeout", &upstream.Error{Kind: upstream.KindDeadlineExceeded}, 504, codeUpstreamTimeout, "", ""},
		{"internal", &upstream.Error{Kind: upstream.KindInternal, Message: "Traceback: secret"}, 502, codeUpstreamError, "", ""},
		{"not found", &upstream.Error{Kind: upstream.KindNotFound}, 404, codeModelNotFound, "model", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			s.core.set(func(context.Context, upstream.EmbedRequest) (upstream.EmbedResult, error) {
				return upstream.EmbedResult{}, tt.err
			})
			rec := s.postJSON(validBody)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			e := checkErrorShape(t, rec)
			if deref(e.Code) != tt.wantCode || deref(e.Param) != tt.wantParam {
				t.Errorf("code %q param %q, want %q %q", deref(e.Code), deref(e.Param), tt.wantCode, tt.wantParam)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if strings.Contains(rec.Body.String(), "secret") {
				t.Error("an internal message reached the client")
			}
			if tt.wantStatus >= 500 && !strings.Contains(s.logs.String(), requestIDOf(rec)) {
				t.Error("the failure was not logged with the request id")
			}
		})
	}
}

func requestIDOf(rec *httptest.ResponseRecorder) string { return rec.Header().Get(requestid.Header) }

func TestCoreNotFoundInvalidatesTheModelCache(t *testing.T) {
	s := newTestServer(t)
	s.core.set(func(context.Context, upstream.EmbedRequest) (upstream.EmbedResult, error) {
		return upstream.EmbedResult{}, &upstream.Error{Kind: upstream.KindNotFound}
	})
	s.postJSON(validBody)
	if s.models.invalidated.Load() != 1 {
		t.Error("model cache not invalidated after the core's NOT_FOUND")
	}
}

func TestModelInfoUnavailable(t *testing.T) {
	s := newTestServer(t)
	s.models.err = &upstream.Error{Kind: upstream.KindUnavailable}
	for _, rec := range []*httptest.ResponseRecorder{s.postJSON(validBody), s.do("GET", "/v1/models", "")} {
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503: %s", rec.Code, rec.Body)
		}
		checkErrorShape(t, rec)
	}
	// A malformed request still gets its 400, core or not.
	if rec := s.postJSON(`{"model":1}`); rec.Code != http.StatusBadRequest {
		t.Errorf("malformed request with the core down: status %d, want 400", rec.Code)
	}
}

func TestCoreReturningWrongDimensionIsABadGateway(t *testing.T) {
	s := newTestServer(t)
	s.core.set(func(_ context.Context, req upstream.EmbedRequest) (upstream.EmbedResult, error) {
		res := fakeResult(req)
		res.Embeddings[0].Values = res.Embeddings[0].Values[:10]
		return res, nil
	})
	rec := s.postJSON(validBody)
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502: %s", rec.Code, rec.Body)
	}
	checkErrorShape(t, rec)
}

func TestRequestTimeoutBoundsTheRequest(t *testing.T) {
	s := newTestServer(t, func(d *Deps) { d.Limits.RequestTimeout = 50 * time.Millisecond })
	s.core.set(func(ctx context.Context, _ upstream.EmbedRequest) (upstream.EmbedResult, error) {
		<-ctx.Done()
		return upstream.EmbedResult{}, ctx.Err()
	})
	rec := s.postJSON(validBody)
	if rec.Code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504: %s", rec.Code, rec.Body)
	}
	checkErrorShape(t, rec)
}

func TestModels(t *testing.T) {
	s := newTestServer(t)

	rec := s.do("GET", "/v1/models", "")
	var list modelList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := modelObject{
		ID: fakecore.ModelID, Object: "model", Created: 0, OwnedBy: "tandem", Aliases: []string{fakecore.Alias},
		Dimension: fakecore.Dimension, MaxTokens: fakecore.MaxTokens, MaxInputs: 256, MaxTextBytes: 8192,
		Precision: "fp32", Ready: true,
	}
	if list.Object != "list" || len(list.Data) != 1 || !reflect.DeepEqual(list.Data[0], want) {
		t.Errorf("list = %+v", list)
	}

	for _, id := range []string{fakecore.ModelID, fakecore.Alias} {
		rec := s.do("GET", "/v1/models/"+id, "")
		var m modelObject
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 || !reflect.DeepEqual(m, want) {
			t.Errorf("GET /v1/models/%s: %d %s", id, rec.Code, rec.Body)
		}
	}

	rec = s.do("GET", "/v1/models/gpt-4", "")
	if rec.Code != http.StatusNotFound || deref(checkErrorShape(t, rec).Code) != codeModelNotFound {
		t.Errorf("unknown model: %d %s", rec.Code, rec.Body)
	}
}

func TestProbes(t *testing.T) {
	s := newTestServer(t)
	if rec := s.do("GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("healthz: %d", rec.Code)
	}
	if rec := s.do("GET", "/readyz", ""); rec.Code != 200 {
		t.Errorf("readyz when ready: %d", rec.Code)
	}

	for _, reason := range []string{health.ReasonDraining, health.ReasonNoServingBackend} {
		s.ready.report = health.Report{Reason: reason, Err: errors.New("dial 10.1.2.3: refused")}
		rec := s.do("GET", "/readyz", "")
		var body probeResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 503 {
			t.Fatalf("readyz not ready: %d %s", rec.Code, rec.Body)
		}
		if body.Status != "not_ready" || body.Reason != reason || body.Detail == "" {
			t.Errorf("readyz body = %+v", body)
		}
		if strings.Contains(rec.Body.String(), "10.1.2.3") {
			t.Error("readyz exposes an internal address")
		}
	}
	// Liveness does not depend on the core.
	if rec := s.do("GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("healthz while not ready: %d", rec.Code)
	}
}

func TestAPIKeys(t *testing.T) {
	s := newTestServer(t, func(d *Deps) { d.Keys = auth.NewKeySet([]string{"sk-right"}) })

	tests := []struct {
		name       string
		header     string
		wantStatus int
	}{
		{"missing", "", 401},
		{"wrong", "Bearer sk-wrong", 401},
		{"wrong scheme", "Basic sk-right", 401},
		{"empty bearer", "Bearer ", 401},
		{"right", "Bearer sk-right", 200},
		{"scheme is case-insensitive", "bearer sk-right", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.header != "" {
				headers = []string{"Authorization", tt.header}
			}
			rec := s.postJSON(validBody, headers...)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 401 {
				if e := checkErrorShape(t, rec); deref(e.Code) != codeInvalidAPIKey {
					t.Errorf("code = %q, want invalid_api_key", deref(e.Code))
				}
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	if rec := s.do("GET", "/readyz", ""); rec.Code != 200 {
		t.Errorf("probes must not need a key: readyz %d", rec.Code)
	}
	if strings.Contains(s.logs.String(), "sk-right") || strings.Contains(s.logs.String(), "sk-wrong") {
		t.Error("an API key appears in the logs")
	}
	if !strings.Contains(s.logs.String(), auth.KeyID("sk-right")) {
		t.Error("the access log does not identify the client by key id")
	}
}

func TestRateLimitPerClient(t *testing.T) {
	s := newTestServer(t, func(d *Deps) {
		d.Keys = auth.NewKeySet([]string{"sk-a", "sk-b"})
		d.RateLimiter = limits.NewRateLimiter(limits.RateConfig{PerSecond: 0.01, Burst: 1, IdleTimeout: time.Hour, MaxClients: 10})
	})
	if rec := s.postJSON(validBody, "Authorization", "Bearer sk-a"); rec.Code != 200 {
		t.Fatalf("first request: %d", rec.Code)
	}
	rec := s.postJSON(validBody, "Authorization", "Bearer sk-a")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d, want 429", rec.Code)
	}
	if e := checkErrorShape(t, rec); deref(e.Code) != codeRateLimitExceeded {
		t.Errorf("code = %q", deref(e.Code))
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if rec := s.postJSON(validBody, "Authorization", "Bearer sk-b"); rec.Code != 200 {
		t.Errorf("another key was limited by the first one's usage: %d", rec.Code)
	}
	if got := testutil.ToFloat64(s.metrics.LimiterRejections.WithLabelValues("rate")); got != 1 {
		t.Errorf("rate rejections metric = %v, want 1", got)
	}
}

func TestRateLimitPerIPWithoutAuth(t *testing.T) {
	s := newTestServer(t, func(d *Deps) {
		d.RateLimiter = limits.NewRateLimiter(limits.RateConfig{PerSecond: 0.01, Burst: 1, IdleTimeout: time.Hour, MaxClients: 10})
	})
	s.postJSON(validBody)
	if rec := s.postJSON(validBody); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second request from the same IP: %d, want 429", rec.Code)
	}
}

func TestInFlightLimitRejectsAtOnce(t *testing.T) {
	s := newTestServer(t, func(d *Deps) { d.InFlight = limits.NewInFlight(1) })
	entered, release := make(chan struct{}), make(chan struct{})
	s.core.set(func(_ context.Context, req upstream.EmbedRequest) (upstream.EmbedResult, error) {
		close(entered)
		<-release
		return fakeResult(req), nil
	})

	var wg sync.WaitGroup
	var first *httptest.ResponseRecorder
	wg.Go(func() { first = s.postJSON(validBody) })
	<-entered

	rec := s.postJSON(validBody) // must not wait for the first
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429", rec.Code)
	}
	if e := checkErrorShape(t, rec); deref(e.Code) != codeTooManyInFlight {
		t.Errorf("code = %q", deref(e.Code))
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	close(release)
	wg.Wait()
	if first.Code != 200 {
		t.Errorf("the admitted request got %d", first.Code)
	}
	if got := testutil.ToFloat64(s.metrics.LimiterRejections.WithLabelValues("in_flight")); got != 1 {
		t.Errorf("in-flight rejections metric = %v, want 1", got)
	}
}

func TestRequestIDs(t *testing.T) {
	s := newTestServer(t)

	rec := s.postJSON(validBody, requestid.Header, "client-id-42")
	if got := requestIDOf(rec); got != "client-id-42" {
		t.Errorf("valid id not echoed: %q", got)
	}
	rec = s.postJSON(validBody, requestid.Header, "bad id\" with quotes")
	if got := requestIDOf(rec); !requestid.Valid(got) || got == "bad id\" with quotes" {
		t.Errorf("invalid id not replaced: %q", got)
	}
	generated := requestIDOf(s.postJSON(validBody))
	if !requestid.Valid(generated) {
		t.Errorf("no id generated: %q", generated)
	}

	ids := s.core.requestIDs()
	if len(ids) != 3 || ids[0] != "client-id-42" || ids[2] != generated {
		t.Errorf("ids passed to the core = %q", ids)
	}
	if !strings.Contains(s.logs.String(), `"request_id":"client-id-42"`) {
		t.Error("access log lacks the request id")
	}
	// Error responses carry it too.
	if rec := s.do("GET", "/nope", ""); requestIDOf(rec) == "" {
		t.Error("404 without a request id")
	}
}

func TestPanicBecomesA500AndTheServerSurvives(t *testing.T) {
	s := newTestServer(t)
	s.core.set(func(context.Context, upstream.EmbedRequest) (upstream.EmbedResult, error) { panic("bug") })
	rec := s.postJSON(validBody)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	checkErrorShape(t, rec)
	if !strings.Contains(s.logs.String(), "panic") {
		t.Error("panic not logged")
	}
	s.core.set(nil)
	if rec := s.postJSON(validBody); rec.Code != 200 {
		t.Errorf("request after a panic: %d", rec.Code)
	}
}

func TestRequestMetrics(t *testing.T) {
	s := newTestServer(t)
	s.postJSON(validBody)
	s.postJSON(`{}`)
	s.do("GET", "/healthz", "")

	if got := testutil.ToFloat64(s.metrics.HTTPRequests.WithLabelValues("embeddings", "200", "ok", upstream.DefaultPoolLabel)); got != 1 {
		t.Errorf("ok embeddings = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.metrics.HTTPRequests.WithLabelValues("embeddings", "400", codeMissingParameter, metrics.ModelNone)); got != 1 {
		t.Errorf("rejected embeddings = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.metrics.HTTPRequests.WithLabelValues("healthz", "200", "ok", metrics.ModelNone)); got != 1 {
		t.Errorf("healthz = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.metrics.EmbeddingTokens); got != 4 {
		t.Errorf("tokens = %v, want 4", got)
	}
}
