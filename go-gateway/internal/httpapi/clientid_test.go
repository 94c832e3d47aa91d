package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/auth"
	"github.com/tandem-inference/tandem/go-gateway/internal/limits"
)

// postFrom posts validBody from the TCP peer peer; headers are name, value
// pairs.
func (s *testServer) postFrom(peer string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/embeddings", strings.NewReader(validBody))
	req.RemoteAddr = peer
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

// oneRequestPerClient is a rate limit that lets each client make one
// request and then refuses it for the rest of the test.
func oneRequestPerClient() *limits.RateLimiter {
	return limits.NewRateLimiter(limits.RateConfig{PerSecond: 0.001, Burst: 1, IdleTimeout: time.Hour, MaxClients: 100})
}

const ingress = "10.0.0.5:40000" // a trusted proxy in these tests

func newProxiedServer(t *testing.T, configure ...func(*Deps)) *testServer {
	return newTestServer(t, append([]func(*Deps){func(d *Deps) {
		d.RateLimiter = oneRequestPerClient()
		d.ClientIP = limits.NewClientIP([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, limits.HeaderXForwardedFor)
	}}, configure...)...)
}

func TestSpoofedForwardingHeadersFromUntrustedPeersAreIgnored(t *testing.T) {
	s := newProxiedServer(t)
	const attacker = "203.0.113.9:5555"
	if rec := s.postFrom(attacker, "X-Forwarded-For", "198.51.100.1"); rec.Code != 200 {
		t.Fatalf("first request: %d", rec.Code)
	}
	// A new made-up address per request must not buy a new bucket.
	for i, fake := range []string{"198.51.100.2", "198.51.100.3", "10.0.0.7"} {
		rec := s.postFrom(attacker, "X-Forwarded-For", fake, "Forwarded", "for="+fake)
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("spoofed request %d (%s): %d, want 429", i, fake, rec.Code)
		}
		checkErrorShape(t, rec)
	}
}

func TestForwardingHeadersFromTrustedProxiesNameTheClient(t *testing.T) {
	s := newProxiedServer(t)
	// Two clients behind one ingress get a bucket each.
	for _, client := range []string{"198.51.100.1", "198.51.100.2"} {
		if rec := s.postFrom(ingress, "X-Forwarded-For", client); rec.Code != 200 {
			t.Fatalf("first request of %s through the ingress: %d", client, rec.Code)
		}
	}
	if rec := s.postFrom(ingress, "X-Forwarded-For", "198.51.100.1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second request of 198.51.100.1: %d, want 429", rec.Code)
	}
	// A client behind the ingress prepending a fake hop is still itself: the
	// ingress appended its real address on the right.
	if rec := s.postFrom(ingress, "X-Forwarded-For", "192.0.2.77, 198.51.100.2"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("spoofed hop behind the ingress got a fresh bucket: %d, want 429", rec.Code)
	}
}

func TestWrongKeysAreThrottledByAddressBeforeAuth(t *testing.T) {
	keys := auth.NewKeySet([]string{"sk-a", "sk-b", "sk-c"})
	s := newTestServer(t, func(d *Deps) {
		d.Keys = keys
		d.RateLimiter = limits.NewRateLimiter(limits.RateConfig{PerSecond: 0.001, Burst: 3, IdleTimeout: time.Hour, MaxClients: 100})
	})
	const attacker, neighbour = "203.0.113.9:1", "203.0.113.10:1"

	// Valid keys are limited per key, not per address: three keys from one
	// address, twice each, exceed the address's burst of 3 without a 429.
	for range 2 {
		for _, k := range []string{"sk-a", "sk-b", "sk-c"} {
			if rec := s.postFrom(neighbour, "Authorization", "Bearer "+k); rec.Code != 200 {
				t.Fatalf("valid key %s: %d", k, rec.Code)
			}
		}
	}

	// Wrong keys: the burst of 3 gets 401, then the address is refused
	// before its keys are even checked.
	for i := range 3 {
		if rec := s.postFrom(attacker, "Authorization", "Bearer sk-guess"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d, want 401", i, rec.Code)
		}
	}
	for i := range 20 {
		rec := s.postFrom(attacker, "Authorization", "Bearer sk-guess-"+strings.Repeat("x", i))
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("wrong key %d past the burst: %d, want 429", i+3, rec.Code)
		}
		if e := checkErrorShape(t, rec); deref(e.Code) != codeRateLimitExceeded || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("code = %q, Retry-After %q", deref(e.Code), rec.Header().Get("Retry-After"))
		}
	}
	// Another address is not affected.
	if rec := s.postFrom(neighbour, "Authorization", "Bearer sk-guess"); rec.Code != http.StatusUnauthorized {
		t.Errorf("a neighbour's wrong key: %d, want 401", rec.Code)
	}
}

func TestLoggedPathIsBounded(t *testing.T) {
	s := newTestServer(t)
	long := "/" + strings.Repeat("a", 60_000)
	if rec := s.do(http.MethodGet, long, ""); rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", rec.Code)
	}
	logs := s.logs.String()
	if strings.Contains(logs, strings.Repeat("a", maxLoggedPathBytes+1)) {
		t.Errorf("a log line holds more than %d bytes of the path", maxLoggedPathBytes)
	}
	if !strings.Contains(logs, strings.Repeat("a", maxLoggedPathBytes-1)+"...(truncated)") {
		t.Error("the access log does not show the truncated path")
	}
	if len(logs) > 4*1024 {
		t.Errorf("one rejected request wrote %d bytes of logs", len(logs))
	}
}
