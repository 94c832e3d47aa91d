package upstream

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// staleRetryInterval is how long a stale model description is reused after
// a failed refresh before the next refresh is tried, so that a core outage
// does not make every request wait for a GetModelInfo call of its own.
const staleRetryInterval = time.Second

// ModelCache caches the core's ModelInfo. The model a core serves changes
// only on redeploys, so asking on every request would double the calls to
// the core for nothing.
type ModelCache struct {
	fetch func(context.Context) (ModelInfo, error)
	ttl   time.Duration
	now   func() time.Time

	// refreshing is a one-slot semaphore: one caller refreshes while the
	// others wait for it (or for their own context).
	refreshing chan struct{}

	mu      sync.Mutex
	info    ModelInfo
	has     bool
	expires time.Time
}

// NewModelCache returns a cache that calls fetch when its entry is missing
// or older than ttl.
func NewModelCache(fetch func(context.Context) (ModelInfo, error), ttl time.Duration) *ModelCache {
	return &ModelCache{fetch: fetch, ttl: ttl, now: time.Now, refreshing: make(chan struct{}, 1)}
}

// Get returns the model description, refreshing it when it has expired. If
// a refresh fails while an older description exists, that one is returned:
// the model rarely changes, and the embed call that follows reports the
// core's real state anyway.
func (c *ModelCache) Get(ctx context.Context) (ModelInfo, error) {
	if info, ok := c.fresh(); ok {
		return info, nil
	}

	select {
	case c.refreshing <- struct{}{}:
		defer func() { <-c.refreshing }()
	case <-ctx.Done():
		return ModelInfo{}, fmt.Errorf("wait for model info: %w", ctx.Err())
	}
	// Another caller may have refreshed while this one waited.
	if info, ok := c.fresh(); ok {
		return info, nil
	}

	info, err := c.fetch(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if err != nil {
		if c.has {
			c.expires = now.Add(min(staleRetryInterval, c.ttl))
			return c.info, nil
		}
		return ModelInfo{}, err
	}
	c.info, c.has, c.expires = info, true, now.Add(c.ttl)
	return info, nil
}

// Peek returns the last description fetched, expired or not, without asking
// the core; ok is false before the first successful fetch. Routing uses it
// to match aliases without a call per request.
func (c *ModelCache) Peek() (info ModelInfo, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info, c.has
}

// Invalidate forces the next Get to refresh, e.g. after the core answered
// NOT_FOUND for a model the cache said it serves.
func (c *ModelCache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expires = time.Time{}
}

func (c *ModelCache) fresh() (ModelInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.has && c.now().Before(c.expires) {
		return c.info, true
	}
	return ModelInfo{}, false
}
