// Package limits holds the gateway's edge limiters. Both answer at once:
// a request over a limit is rejected, never queued, because a queue at the
// edge only hides overload until clients time out.
package limits

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateConfig configures a RateLimiter.
type RateConfig struct {
	// PerSecond is the refill rate of each client's token bucket; 0 or less
	// disables rate limiting.
	PerSecond float64
	// Burst is the bucket size: how many requests a client may make at once.
	Burst int
	// IdleTimeout evicts a client not seen for this long. Eviction loses
	// nothing as long as IdleTimeout >= Burst/PerSecond, because by then the
	// client's bucket would be full again anyway.
	IdleTimeout time.Duration
	// MaxClients caps the number of buckets. When the table is full even
	// after evicting idle clients, new clients are rejected: that keeps
	// memory bounded when an attacker cycles through addresses or keys.
	MaxClients int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// tableFullRetryAfter is what a client rejected for a full table is told.
const tableFullRetryAfter = time.Second

// RateLimiter is a set of token buckets, one per client key.
type RateLimiter struct {
	cfg RateConfig

	mu        sync.Mutex
	clients   map[string]*client
	lastSweep time.Time
}

type client struct {
	bucket   *rate.Limiter
	lastSeen time.Time
}

// NewRateLimiter returns a limiter; with cfg.PerSecond <= 0 it allows
// everything.
func NewRateLimiter(cfg RateConfig) *RateLimiter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RateLimiter{cfg: cfg, clients: make(map[string]*client)}
}

// Enabled reports whether the limiter limits anything.
func (l *RateLimiter) Enabled() bool { return l.cfg.PerSecond > 0 }

// Allow takes a token from key's bucket. When there is none it returns false
// and how long until there will be one.
func (l *RateLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if !l.Enabled() {
		return true, 0
	}
	now := l.cfg.Now()

	// One mutex for the table is simple and, at the request rates one
	// gateway replica sees, far from being a bottleneck.
	l.mu.Lock()
	defer l.mu.Unlock()

	l.maybeSweep(now)
	c, found := l.clients[key]
	if !found {
		if len(l.clients) >= l.cfg.MaxClients {
			return false, tableFullRetryAfter
		}
		c = &client{bucket: rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)}
		l.clients[key] = c
	}
	c.lastSeen = now

	// Reserve-then-cancel tells how long the wait would be without taking
	// the token (golang.org/x/time/rate documents this pattern).
	r := c.bucket.ReserveN(now, 1)
	if !r.OK() {
		return false, tableFullRetryAfter
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Peek reports whether key's bucket holds a token, without taking one and
// without tracking a new client (an unknown key has a full bucket). With
// it a caller can refuse a client that has used up its tokens and charge a
// token only for some requests (see httpapi's limitByAddress).
func (l *RateLimiter) Peek(key string) (ok bool, retryAfter time.Duration) {
	if !l.Enabled() {
		return true, 0
	}
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c, found := l.clients[key]
	if !found {
		return true, 0
	}
	if tokens := c.bucket.TokensAt(now); tokens < 1 {
		return false, time.Duration((1 - tokens) / l.cfg.PerSecond * float64(time.Second))
	}
	return true, 0
}

// Len returns the number of tracked clients.
func (l *RateLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// maybeSweep evicts idle clients, at most every half idle timeout, or every
// second while the table is full. Must be called with l.mu held.
func (l *RateLimiter) maybeSweep(now time.Time) {
	interval := l.cfg.IdleTimeout / 2
	if len(l.clients) >= l.cfg.MaxClients {
		interval = min(interval, time.Second)
	}
	if now.Sub(l.lastSweep) < interval {
		return
	}
	l.lastSweep = now
	for key, c := range l.clients {
		if now.Sub(c.lastSeen) >= l.cfg.IdleTimeout {
			delete(l.clients, key)
		}
	}
}
