// Package upstream is the gateway's gRPC client to the Python core. It owns
// the connection (balancing, per-core health checking, retries, keepalive,
// message size limits), the per-call deadline and request-id propagation,
// and it turns gRPC statuses into *Error values the HTTP layer can map.
//
// Failure isolation is per core, never for the pool: a core whose health
// service stops answering SERVING, or whose connection fails, gets no picks
// from round_robin while the others keep serving (serviceconfig.go). There is
// deliberately no circuit breaker over the channel: one would turn a busy
// core's RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED into 503s for every client
// (docs/gateway.md, "Failure isolation").
package upstream

import (
	"context"
	"fmt"
	"path"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	// Registers the client side of grpc.health.v1, which the service
	// config's healthCheckConfig needs; grpc-go does it in this package's
	// init, so the blank import is the documented way to enable it.
	_ "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/dns"
	"google.golang.org/grpc/resolver/manual"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
	"github.com/tandem-inference/tandem/go-gateway/internal/config"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
)

// ServiceName is the core's gRPC service, also the name its health is
// reported under.
var ServiceName = contractv1.EmbeddingService_ServiceDesc.ServiceName

// connectParams shape reconnection to a core. The headless Service
// publishes cores before they are ready (deploy/helm), so the gateway may
// dial one whose port is not open yet; gRPC's default backoff grows to 120 s,
// which would leave a core that opened its port a few seconds later unused
// for minutes. Inside a cluster a connection is made in milliseconds, so 5 s
// is a generous attempt timeout (the default 20 s kept a gone pod's address
// "connecting" long after DNS had dropped it).
var connectParams = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  250 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   5 * time.Second,
	},
	MinConnectTimeout: 5 * time.Second,
}

// staticScheme is the resolver scheme used for a static address list.
const staticScheme = "tandem-static"

// setDNSMinResolutionInterval applies the first client's setting: grpc-go's
// DNS resolver is process-wide and may only be configured before it runs.
var setDNSMinResolutionInterval sync.Once

// Client calls the cores of one pool. It is safe for concurrent use.
type Client struct {
	pool        string // metric label: the pool's model, or DefaultPoolLabel
	conn        *grpc.ClientConn
	embedding   contractv1.EmbeddingServiceClient
	health      healthpb.HealthClient
	metrics     *metrics.Metrics
	callTimeout time.Duration
}

// New creates the client of the single pool of cfg.Target or cfg.Addresses
// (NewPools creates one per configured pool). Like grpc.NewClient it does
// not connect yet: the first call (or readiness check) does, so the gateway
// can start before the core. With tracing on, every call carries the trace
// context to the core. lim sizes the largest message sent and received
// (MessageLimitsFor).
func New(cfg config.Upstream, lim config.Limits, m *metrics.Metrics, tracing telemetry.Tracing) (*Client, error) {
	return newClient(config.Pool{Target: cfg.Target, Addresses: cfg.Addresses}, cfg, lim, m, tracing)
}

// newClient creates the client of one pool: its own channel, so its own
// round_robin, health watches, retry budget and connections.
func newClient(pool config.Pool, cfg config.Upstream, lim config.Limits, m *metrics.Metrics, tracing telemetry.Tracing) (*Client, error) {
	label := poolLabel(pool.Model)
	setDNSMinResolutionInterval.Do(func() { dns.SetMinResolutionInterval(cfg.DNSMinResolutionInterval) })
	sc, err := serviceConfigJSON(cfg)
	if err != nil {
		return nil, err
	}
	sizes := MessageLimitsFor(lim, cfg.MaxEmbeddingDimension)
	opts := []grpc.DialOption{
		// Plain text inside the cluster; put mTLS in a mesh or swap in
		// credentials here.
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(sc),
		// Ignore service configs published in DNS: this file is the only
		// source of the channel's policy.
		grpc.WithDisableServiceConfig(),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: cfg.KeepaliveTimeout,
			// Keep idle connections verified too, so the first request after
			// a quiet period does not hit a silently dead connection.
			PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(connectParams),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(sizes.Send),
			grpc.MaxCallRecvMsgSize(sizes.Receive),
		),
		grpc.WithChainUnaryInterceptor(metricsInterceptor(m, label), sendLimitInterceptor(sizes.Send)),
		grpc.WithStatsHandler(attemptCounter{}),
		grpc.WithUserAgent("tandem-gateway"),
	}
	opts = append(opts, traceOptions(tracing)...)

	target := pool.Target
	if len(pool.Addresses) == 0 && cfg.DNSRefreshInterval > 0 {
		opts = append(opts, grpc.WithResolvers(newRefreshingDNS(cfg.DNSRefreshInterval)))
	}
	if len(pool.Addresses) > 0 {
		r := manual.NewBuilderWithScheme(staticScheme)
		r.InitialState(resolver.State{Endpoints: endpoints(pool.Addresses)})
		opts = append(opts, grpc.WithResolvers(r))
		target = staticScheme + ":///core"
	}

	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("create grpc client for %q: %w", target, err)
	}

	return &Client{
		pool:        label,
		conn:        conn,
		embedding:   contractv1.NewEmbeddingServiceClient(conn),
		health:      healthpb.NewHealthClient(conn),
		metrics:     m,
		callTimeout: cfg.CallTimeout,
	}, nil
}

// Close closes the connection; calls in flight fail with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

// CheckServing asks the core, over the balanced channel, whether the
// embedding service is SERVING. Because the channel only picks backends that
// pass client-side health checks, success means at least one backend is
// SERVING.
func (c *Client) CheckServing(ctx context.Context) error {
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil {
		return newStatusError("Health.Check", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("core reports %s", s)
	}
	return nil
}

// invoke runs one RPC with the call deadline and the request id attached. The deadline is the smaller of the caller's remaining
// budget and the configured call timeout; context.WithTimeout gives exactly
// that, and gRPC sends it to the core as grpc-timeout.
func invoke[Resp any](ctx context.Context, c *Client, method string, rpc func(context.Context) (Resp, error)) (Resp, error) {
	var zero Resp
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	if id := requestid.FromContext(ctx); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, requestid.MetadataKey, id)
	}

	resp, err := rpc(ctx)
	if err != nil {
		return zero, newStatusError(method, err)
	}
	return resp, nil
}

func endpoints(addrs []string) []resolver.Endpoint {
	eps := make([]resolver.Endpoint, 0, len(addrs))
	for _, a := range addrs {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	return eps
}

// shortMethod turns "/tandem.contract.v1.EmbeddingService/Embed" into
// "Embed" for metric labels.
func shortMethod(fullMethod string) string { return path.Base(fullMethod) }
