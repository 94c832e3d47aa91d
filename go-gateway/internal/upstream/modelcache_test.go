package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type scriptedFetch struct {
	calls atomic.Int64
	fail  atomic.Bool
	id    atomic.Value
}

func (f *scriptedFetch) fetch(context.Context) (ModelInfo, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return ModelInfo{}, errors.New("core down")
	}
	id, _ := f.id.Load().(string)
	return ModelInfo{ID: id, Dimension: 384}, nil
}

func newTestCache(ttl time.Duration) (*ModelCache, *scriptedFetch, *fakeClock) {
	f := &scriptedFetch{}
	f.id.Store("model-a")
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	c := NewModelCache(f.fetch, ttl)
	c.now = clock.Now
	return c, f, clock
}

func TestModelCacheFetchesOncePerTTL(t *testing.T) {
	c, f, clock := newTestCache(time.Minute)
	for range 3 {
		if _, err := c.Get(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("fetched %d times within the TTL, want 1", got)
	}

	clock.Advance(time.Minute)
	f.id.Store("model-b")
	info, err := c.Get(t.Context())
	if err != nil || info.ID != "model-b" {
		t.Errorf("after the TTL got %+v, %v; want a refreshed model-b", info, err)
	}
}

func TestModelCacheServesStaleWhenRefreshFails(t *testing.T) {
	c, f, clock := newTestCache(time.Minute)
	if _, err := c.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	f.fail.Store(true)

	info, err := c.Get(t.Context())
	if err != nil || info.ID != "model-a" {
		t.Fatalf("got %+v, %v; want the stale model-a", info, err)
	}
	// The failed refresh is not retried by every request.
	calls := f.calls.Load()
	if _, err := c.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != calls {
		t.Error("a request right after a failed refresh fetched again")
	}
	// But it is retried soon, and recovers.
	f.fail.Store(false)
	clock.Advance(staleRetryInterval)
	if _, err := c.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != calls+1 {
		t.Error("no refresh after the stale retry interval")
	}
}

func TestModelCacheFailsWithoutAnyValue(t *testing.T) {
	c, f, _ := newTestCache(time.Minute)
	f.fail.Store(true)
	if _, err := c.Get(t.Context()); err == nil {
		t.Fatal("Get succeeded with nothing cached and the core down")
	}
	// Failures are not cached.
	f.fail.Store(false)
	if _, err := c.Get(t.Context()); err != nil {
		t.Fatalf("Get after recovery: %v", err)
	}
}

func TestModelCacheInvalidate(t *testing.T) {
	c, f, _ := newTestCache(time.Hour)
	if _, err := c.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.Invalidate()
	f.id.Store("model-b")
	if info, _ := c.Get(t.Context()); info.ID != "model-b" {
		t.Errorf("after Invalidate got %q, want model-b", info.ID)
	}
}

func TestModelCacheConcurrentGetsShareOneFetch(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	c := NewModelCache(func(context.Context) (ModelInfo, error) {
		calls.Add(1)
		<-release
		return ModelInfo{ID: "m", Dimension: 1}, nil
	}, time.Hour)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Get(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond) // let the goroutines pile up on the fetch
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("%d concurrent fetches, want 1", got)
	}
}

func TestModelCacheWaitRespectsContext(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	c := NewModelCache(func(ctx context.Context) (ModelInfo, error) {
		<-block
		return ModelInfo{}, errors.New("unreachable")
	}, time.Hour)
	go func() { _, _ = c.Get(context.Background()) }()
	time.Sleep(20 * time.Millisecond) // the goroutine now holds the refresh

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the waiter's deadline", err)
	}
}
