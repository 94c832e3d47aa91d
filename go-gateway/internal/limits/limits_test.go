package limits

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestLimiter(perSecond float64, burst, maxClients int) (*RateLimiter, *clock) {
	c := &clock{now: time.Unix(1_000_000, 0)}
	return NewRateLimiter(RateConfig{
		PerSecond: perSecond, Burst: burst, IdleTimeout: time.Minute, MaxClients: maxClients, Now: c.Now,
	}), c
}

func TestRateLimiterAllowsBurstThenRejectsWithRetryAfter(t *testing.T) {
	l, c := newTestLimiter(2, 3, 10)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d within the burst was rejected", i)
		}
	}
	ok, retryAfter := l.Allow("a")
	if ok {
		t.Fatal("request over the burst was allowed")
	}
	if retryAfter <= 0 || retryAfter > time.Second {
		t.Errorf("retryAfter = %v, want about 0.5s at 2 rps", retryAfter)
	}
	// A rejection does not consume a token: after the wait it succeeds.
	c.Advance(retryAfter)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("request after Retry-After was rejected")
	}
}

func TestRateLimiterKeepsClientsApart(t *testing.T) {
	l, _ := newTestLimiter(1, 1, 10)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("first request of a rejected")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("client b was limited by client a's usage")
	}
}

func TestRateLimiterEvictsIdleClients(t *testing.T) {
	l, c := newTestLimiter(1, 1, 1000)
	for i := range 100 {
		l.Allow(fmt.Sprintf("client-%d", i))
	}
	if l.Len() != 100 {
		t.Fatalf("tracking %d clients, want 100", l.Len())
	}
	c.Advance(2 * time.Minute)
	l.Allow("newcomer")
	if got := l.Len(); got != 1 {
		t.Errorf("tracking %d clients after they went idle, want 1", got)
	}
}

func TestRateLimiterBoundsTheTable(t *testing.T) {
	l, c := newTestLimiter(1, 1, 2)
	l.Allow("a")
	l.Allow("b")
	if ok, _ := l.Allow("c"); ok {
		t.Error("a new client was admitted into a full table")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("known client a got a second token in the same instant")
	}
	c.Advance(2 * time.Minute) // a and b go idle and are evicted
	if ok, _ := l.Allow("c"); !ok {
		t.Error("client c still rejected after idle clients were evicted")
	}
	if l.Len() > 2 {
		t.Errorf("table holds %d clients, max 2", l.Len())
	}
}

func TestRateLimiterDisabled(t *testing.T) {
	l := NewRateLimiter(RateConfig{})
	for range 1000 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("a disabled limiter rejected a request")
		}
	}
	if l.Len() != 0 {
		t.Error("a disabled limiter tracked clients")
	}
}

func TestInFlightRejectsOverTheCapAndFreesOnRelease(t *testing.T) {
	f := NewInFlight(2)
	r1, ok1 := f.TryAcquire()
	_, ok2 := f.TryAcquire()
	if !ok1 || !ok2 {
		t.Fatal("requests under the cap were rejected")
	}
	if _, ok := f.TryAcquire(); ok {
		t.Fatal("a request over the cap was admitted")
	}
	r1()
	if _, ok := f.TryAcquire(); !ok {
		t.Error("a released slot was not reused")
	}
}

func TestInFlightUnlimited(t *testing.T) {
	f := NewInFlight(0)
	for range 1000 {
		if _, ok := f.TryAcquire(); !ok {
			t.Fatal("an unlimited InFlight rejected a request")
		}
	}
}

func TestPeekNeitherTakesATokenNorTracksAClient(t *testing.T) {
	l, c := newTestLimiter(2, 2, 10)
	if ok, _ := l.Peek("a"); !ok || l.Len() != 0 {
		t.Fatalf("Peek of an unknown client: ok=%v, tracked %d", ok, l.Len())
	}
	for range 2 {
		l.Allow("a")
	}
	ok, retryAfter := l.Peek("a")
	if ok || retryAfter <= 0 || retryAfter > 500*time.Millisecond {
		t.Fatalf("Peek of an empty bucket = %v, %v; want false, (0, 500ms]", ok, retryAfter)
	}
	c.Advance(500 * time.Millisecond)
	if ok, _ := l.Peek("a"); !ok {
		t.Error("Peek after the refill = false")
	}
	if ok, _ := l.Peek("a"); !ok {
		t.Error("Peek took the token")
	}
}
