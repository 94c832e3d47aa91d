// Package config holds every setting of the gateway in one typed struct,
// loaded from flags and TANDEM_GATEWAY_* environment variables (see Load) and
// validated once at start-up, so that a misconfiguration stops the process
// with a clear message instead of surfacing later as odd behaviour.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Config is the complete configuration of the gateway.
type Config struct {
	HTTP      HTTP
	Admin     Admin
	Upstream  Upstream
	Readiness Readiness
	Limits    Limits
	Auth      Auth
	Lifecycle Lifecycle
	LogLevel  slog.Level
}

// HTTP configures the public API listener and its http.Server.
type HTTP struct {
	// ListenAddr is the host:port of the public API. Port 0 picks a free port
	// (the bound address is logged), which is what tests use.
	ListenAddr string
	// RequestTimeout is the budget for handling one request end to end; every
	// upstream call gets at most what is left of it.
	RequestTimeout time.Duration
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// http.Server timeouts; without them a slow client can hold a connection
	// (and a goroutine) forever.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// Admin configures the operator listener that serves /metrics. It is kept
// off the public port so metrics are never exposed to API clients.
type Admin struct {
	// ListenAddr is the host:port of the admin listener; empty disables it.
	ListenAddr string
}

// Upstream configures the gRPC clients to the Python cores.
type Upstream struct {
	// Pools maps each served model to the cores that serve it, one gRPC
	// channel per pool (-upstream-pools). Empty means one pool given by
	// Target or Addresses, whose model is whatever its cores report.
	Pools []Pool
	// Target is a gRPC target URI, normally dns:///<headless-service>:<port>
	// so that every core pod is resolved and balanced over.
	Target string
	// Addresses is a static list of host:port backends used instead of
	// Target when set.
	Addresses []string
	// CallTimeout caps one upstream call (all of its retry attempts).
	CallTimeout time.Duration
	// MaxAttempts is the gRPC retry policy's maxAttempts (first try
	// included); only UNAVAILABLE is retried.
	MaxAttempts         int
	RetryInitialBackoff time.Duration
	RetryMaxBackoff     time.Duration
	// KeepaliveTime and KeepaliveTimeout are the client keepalive pings. The
	// core rejects pings more often than every 10s with GOAWAY too_many_pings.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// DNSMinResolutionInterval is the shortest time between two DNS
	// resolutions of Target. gRPC re-resolves when a connection to a core
	// ends; its default limit of 30s leaves the gateway knowing only old
	// cores for up to 30s during a rollout. The resolver is process-wide.
	DNSMinResolutionInterval time.Duration
	// DNSRefreshInterval asks the resolver for a fresh answer this often
	// (0: only when a connection ends, gRPC's own behaviour), so cores added
	// by a scale-up are called within about this plus the DNS answer's age.
	DNSRefreshInterval time.Duration
	// MaxEmbeddingDimension is the largest vector accepted from a core; with
	// Limits it sizes the largest gRPC message received (upstream.MessageLimitsFor).
	MaxEmbeddingDimension int
	// ModelInfoTTL is how long GetModelInfo's answer is cached.
	ModelInfoTTL time.Duration
}

// Pool is one model's upstream: the id clients ask for and the gRPC target
// of the cores that serve it.
type Pool struct {
	// Model is the model id (or alias) the pool's cores serve, as clients
	// send it. Empty for the single pool of Target/Addresses.
	Model string
	// Target is the gRPC target URI, e.g. dns:///tandem-core-headless:50051.
	Target string
	// Addresses is the static host:port list of the single pool, when set.
	Addresses []string
}

// PoolList is every pool the gateway calls: the configured pools, or the one
// pool of Target/Addresses (Model empty) for a single-model deployment.
func (u Upstream) PoolList() []Pool {
	if len(u.Pools) > 0 {
		return u.Pools
	}
	return []Pool{{Target: u.Target, Addresses: u.Addresses}}
}

// Readiness configures /readyz.
type Readiness struct {
	// CheckTimeout bounds one grpc.health.v1 check of the core.
	CheckTimeout time.Duration
	// CacheTTL is how long a check result is reused, so that frequent probes
	// do not turn into a stream of health RPCs.
	CacheTTL time.Duration
}

// Limits are the edge protections applied before a request reaches the core.
type Limits struct {
	MaxBodyBytes int64
	// MaxInputs and MaxTextBytes bound one embeddings request. The stricter
	// of these and the core's advertised limits applies.
	MaxInputs    int
	MaxTextBytes int
	// MaxInFlight caps concurrent API requests; 0 means no cap.
	MaxInFlight int
	// RateLimitPerSecond and RateLimitBurst define a token bucket per API key
	// (or per client IP when auth is off); a rate of 0 disables it.
	RateLimitPerSecond float64
	RateLimitBurst     int
	// RateLimitIdleTimeout evicts buckets of clients not seen for this long;
	// RateLimitMaxClients caps the number of buckets, so memory stays bounded
	// even when many distinct clients appear.
	RateLimitIdleTimeout time.Duration
	RateLimitMaxClients  int
	// TrustedProxies are the peers whose forwarding header (ClientIPHeader)
	// is believed when naming a client by address; every other peer is the
	// client itself. Addresses are /32 or /128 prefixes.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is "X-Forwarded-For" or "Forwarded" (RFC 7239).
	ClientIPHeader string
}

// Auth configures optional API keys. With no keys, auth is off.
type Auth struct {
	// APIKeysFile holds one key per line (blank lines and # comments are
	// ignored).
	APIKeysFile string
	// APIKeys come from the environment only, never from a flag, because
	// command lines are visible to every user of the host.
	APIKeys []string
	// APIKeysReloadInterval is how often the key file is re-read, so that a
	// rotated Secret takes effect without a restart.
	APIKeysReloadInterval time.Duration
}

// Lifecycle configures graceful shutdown.
type Lifecycle struct {
	// DrainDelay is how long the gateway keeps serving after SIGTERM with
	// /readyz failing, so Kubernetes removes it from Service endpoints before
	// it stops accepting connections.
	DrainDelay time.Duration
	// ShutdownTimeout bounds waiting for in-flight requests after the drain.
	ShutdownTimeout time.Duration
}

// DefaultUpstreamTarget is where a locally started core listens.
const DefaultUpstreamTarget = "dns:///127.0.0.1:50051"

// coreMinPingInterval is the core's keepalive enforcement policy: it answers
// pings sent more often than this with GOAWAY too_many_pings.
const coreMinPingInterval = 10 * time.Second

// maxEmbeddingDimension bounds upstream-max-dimension so that the derived
// message size stays far from int overflow and from absurd allocations.
const maxEmbeddingDimension = 1 << 16

// maxGRPCAttempts is grpc-go's upper bound on retry attempts; larger values
// in a service config are silently capped, so reject them instead.
const maxGRPCAttempts = 5

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		HTTP: HTTP{
			ListenAddr:        "127.0.0.1:8080",
			RequestTimeout:    30 * time.Second,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      35 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
		},
		Admin: Admin{ListenAddr: "127.0.0.1:9090"},
		Upstream: Upstream{
			Target:              DefaultUpstreamTarget,
			CallTimeout:         10 * time.Second,
			MaxAttempts:         3,
			RetryInitialBackoff: 100 * time.Millisecond,
			RetryMaxBackoff:     1 * time.Second,
			KeepaliveTime:       20 * time.Second,
			KeepaliveTimeout:    5 * time.Second,
			// Often enough that a rollout is followed within a second or
			// two, rare enough that flapping cores cannot flood DNS.
			DNSMinResolutionInterval: 2 * time.Second,
			DNSRefreshInterval:       5 * time.Second,
			// all-MiniLM-L6-v2 has 384; 1024 also fits the large BERT-style
			// models without letting a response grow past ~1 MiB per 256 texts.
			MaxEmbeddingDimension: 1024,
			ModelInfoTTL:          60 * time.Second,
		},
		Readiness: Readiness{
			// Below the kubelet's default probe timeout of 1s, so a slow
			// core shows up as "not ready", not as a timed-out probe.
			CheckTimeout: 500 * time.Millisecond,
			CacheTTL:     1 * time.Second,
		},
		Limits: Limits{
			MaxBodyBytes:         4 << 20,
			MaxInputs:            256,
			MaxTextBytes:         8192,
			MaxInFlight:          32, // bounds memory: `tandem-gateway memory-plan`, docs/gateway.md "Memory"
			RateLimitPerSecond:   50,
			RateLimitBurst:       100,
			RateLimitIdleTimeout: 10 * time.Minute,
			RateLimitMaxClients:  100_000,
			// Loopback only: a proxy in the same host or pod (a mesh sidecar,
			// a local nginx) can set X-Forwarded-For, nobody else can.
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
			ClientIPHeader: "X-Forwarded-For",
		},
		Auth: Auth{APIKeysReloadInterval: 10 * time.Second},
		Lifecycle: Lifecycle{
			DrainDelay:      5 * time.Second,
			ShutdownTimeout: 30 * time.Second,
		},
		LogLevel: slog.LevelInfo,
	}
}

// Validate reports every problem with c at once, so an operator can fix a
// configuration in one go.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}

	check(validHostPort(c.HTTP.ListenAddr), "listen-addr %q: want host:port", c.HTTP.ListenAddr)
	check(c.Admin.ListenAddr == "" || validHostPort(c.Admin.ListenAddr), "admin-addr %q: want host:port, or empty to disable", c.Admin.ListenAddr)
	check(c.HTTP.RequestTimeout > 0, "request-timeout must be positive")
	check(c.HTTP.ReadHeaderTimeout > 0, "http-read-header-timeout must be positive")
	check(c.HTTP.ReadTimeout > 0, "http-read-timeout must be positive")
	check(c.HTTP.IdleTimeout > 0, "http-idle-timeout must be positive")
	check(c.HTTP.MaxHeaderBytes >= 1024, "http-max-header-bytes must be at least 1024")
	// The response is written after the request's work is done; a write
	// timeout shorter than the request budget would cut off slow answers.
	check(c.HTTP.WriteTimeout > c.HTTP.RequestTimeout,
		"http-write-timeout (%s) must be longer than request-timeout (%s)", c.HTTP.WriteTimeout, c.HTTP.RequestTimeout)

	u := c.Upstream
	switch {
	case len(u.Pools) > 0 && (u.Target != "" || len(u.Addresses) > 0):
		errs = append(errs, errors.New("set upstream-pools or upstream-target/upstream-addresses, not both"))
	case len(u.Pools) > 0:
		errs = append(errs, validatePools(u.Pools)...)
	case u.Target == "" && len(u.Addresses) == 0:
		errs = append(errs, errors.New("set upstream-pools, upstream-target or upstream-addresses"))
	case u.Target != "" && len(u.Addresses) > 0:
		errs = append(errs, errors.New("set upstream-target or upstream-addresses, not both"))
	}
	for _, a := range u.Addresses {
		check(validHostPort(a), "upstream-addresses: %q: want host:port", a)
	}
	check(u.CallTimeout > 0, "upstream-timeout must be positive")
	check(u.MaxAttempts >= 1 && u.MaxAttempts <= maxGRPCAttempts, "upstream-max-attempts must be between 1 and %d", maxGRPCAttempts)
	check(u.RetryInitialBackoff > 0, "upstream-retry-initial-backoff must be positive")
	check(u.RetryMaxBackoff >= u.RetryInitialBackoff, "upstream-retry-max-backoff must be at least upstream-retry-initial-backoff")
	check(u.KeepaliveTime >= coreMinPingInterval,
		"upstream-keepalive-time (%s) must be at least %s: the core answers more frequent pings with GOAWAY too_many_pings", u.KeepaliveTime, coreMinPingInterval)
	check(u.KeepaliveTimeout > 0, "upstream-keepalive-timeout must be positive")
	check(u.DNSMinResolutionInterval >= 100*time.Millisecond,
		"upstream-dns-min-interval (%s) must be at least 100ms", u.DNSMinResolutionInterval)
	check(u.DNSRefreshInterval == 0 || u.DNSRefreshInterval >= u.DNSMinResolutionInterval,
		"upstream-dns-refresh-interval (%s) must be 0 (off) or at least upstream-dns-min-interval (%s)", u.DNSRefreshInterval, u.DNSMinResolutionInterval)
	check(u.MaxEmbeddingDimension >= 1 && u.MaxEmbeddingDimension <= maxEmbeddingDimension,
		"upstream-max-dimension must be between 1 and %d", maxEmbeddingDimension)
	check(u.ModelInfoTTL > 0, "model-cache-ttl must be positive")

	check(c.Readiness.CheckTimeout > 0, "readiness-timeout must be positive")
	check(c.Readiness.CacheTTL >= 0, "readiness-cache-ttl must not be negative")

	l := c.Limits
	check(l.MaxBodyBytes >= 1024, "max-body-bytes must be at least 1024")
	check(l.MaxInputs >= 1, "max-inputs must be at least 1")
	check(l.MaxTextBytes >= 1, "max-text-bytes must be at least 1")
	check(l.MaxInFlight >= 0, "max-in-flight must not be negative (0 disables the limit)")
	check(l.RateLimitPerSecond >= 0, "rate-limit-rps must not be negative (0 disables rate limiting)")
	if l.RateLimitPerSecond > 0 {
		check(l.RateLimitBurst >= 1, "rate-limit-burst must be at least 1 when rate limiting is on")
		check(l.RateLimitIdleTimeout > 0, "rate-limit-idle-timeout must be positive")
		check(l.RateLimitMaxClients >= 1, "rate-limit-max-clients must be at least 1")
	}
	check(l.ClientIPHeader == "X-Forwarded-For" || l.ClientIPHeader == "Forwarded",
		"client-ip-header %q: want X-Forwarded-For or Forwarded", l.ClientIPHeader)
	// A removed key must stop working within a minute (docs/gateway.md).
	check(c.Auth.APIKeysReloadInterval >= 100*time.Millisecond && c.Auth.APIKeysReloadInterval <= time.Minute,
		"api-keys-reload-interval must be between 100ms and 1m")

	check(c.Lifecycle.DrainDelay >= 0, "drain-delay must not be negative")
	// In-flight requests may run for the whole request budget; a shorter
	// shutdown would cut them off.
	check(c.Lifecycle.ShutdownTimeout >= c.HTTP.RequestTimeout,
		"shutdown-timeout (%s) must be at least request-timeout (%s) so in-flight requests can finish", c.Lifecycle.ShutdownTimeout, c.HTTP.RequestTimeout)

	return errors.Join(errs...)
}

func validHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	return err == nil && port != ""
}
