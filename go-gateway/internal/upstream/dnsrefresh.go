package upstream

import (
	"sync"
	"time"

	"google.golang.org/grpc/resolver"
)

// refreshingDNS is grpc-go's own DNS resolver, asked to resolve again every
// interval. grpc-go re-resolves only when a connection to a core ends, so a
// core added by a scale-up was found when some connection next closed (the
// cores' max connection age, 30 s, plus its grace period while the health
// watch stream stays open): tests/k8s measured a new core's first call up to
// 73 s after it turned ready. Asking every few seconds bounds that by the
// cluster DNS answer's age instead. The resolution itself, its rate limit
// (DNSMinResolutionInterval) and the address updates stay grpc-go's.
type refreshingDNS struct {
	inner    resolver.Builder
	interval time.Duration
}

// newRefreshingDNS returns a builder for the "dns" scheme, given to one
// channel with grpc.WithResolvers (the process-wide registry is untouched).
func newRefreshingDNS(interval time.Duration) resolver.Builder {
	// grpc-go registers its DNS resolver under "dns" when the package loads.
	return refreshingDNS{inner: resolver.Get("dns"), interval: interval}
}

func (b refreshingDNS) Scheme() string { return b.inner.Scheme() }

func (b refreshingDNS) Build(target resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	r, err := b.inner.Build(target, cc, opts)
	if err != nil {
		return nil, err
	}
	p := &refreshingResolver{Resolver: r, stop: make(chan struct{})}
	go p.refresh(b.interval)
	return p, nil
}

type refreshingResolver struct {
	resolver.Resolver
	stop     chan struct{}
	stopOnce sync.Once
}

func (p *refreshingResolver) refresh(interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
			p.Resolver.ResolveNow(resolver.ResolveNowOptions{})
		}
	}
}

func (p *refreshingResolver) Close() {
	p.stopOnce.Do(func() { close(p.stop) })
	p.Resolver.Close()
}
