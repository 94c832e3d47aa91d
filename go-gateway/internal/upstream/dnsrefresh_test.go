package upstream

import (
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/resolver"
)

// countingResolver stands in for grpc-go's DNS resolver: it counts the
// ResolveNow calls that would each send a DNS query.
type countingResolver struct {
	resolveNow atomic.Int64
	closed     atomic.Bool
}

func (r *countingResolver) ResolveNow(resolver.ResolveNowOptions) { r.resolveNow.Add(1) }
func (r *countingResolver) Close()                                { r.closed.Store(true) }

type countingBuilder struct{ r *countingResolver }

func (b countingBuilder) Build(resolver.Target, resolver.ClientConn, resolver.BuildOptions) (resolver.Resolver, error) {
	return b.r, nil
}
func (countingBuilder) Scheme() string { return "dns" }

func TestRefreshingDNSAsksAgainEveryIntervalUntilClosed(t *testing.T) {
	inner := &countingResolver{}
	b := refreshingDNS{inner: countingBuilder{inner}, interval: 20 * time.Millisecond}
	r, err := b.Build(resolver.Target{}, nil, resolver.BuildOptions{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for inner.resolveNow.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := inner.resolveNow.Load(); got < 3 {
		t.Fatalf("ResolveNow called %d times in 10s, want every 20ms", got)
	}
	r.Close()
	r.Close() // twice is harmless
	if !inner.closed.Load() {
		t.Error("Close did not close grpc-go's resolver")
	}
	after := inner.resolveNow.Load()
	time.Sleep(100 * time.Millisecond)
	if got := inner.resolveNow.Load(); got > after+1 { // one tick may have been in flight
		t.Errorf("ResolveNow still called after Close: %d -> %d", after, got)
	}
}

func TestRefreshingDNSKeepsTheDNSScheme(t *testing.T) {
	if got := newRefreshingDNS(time.Second).Scheme(); got != "dns" {
		t.Errorf("scheme = %q: the chart's dns:/// targets would not use it", got)
	}
}
