package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
)

// EnvPrefix starts the environment variable of every setting. The variable
// is derived from the flag name, so the two cannot drift apart:
// -upstream-target is TANDEM_GATEWAY_UPSTREAM_TARGET.
const EnvPrefix = "TANDEM_GATEWAY_"

// envAPIKeys is the one environment-only setting (see Auth.APIKeys).
const envAPIKeys = EnvPrefix + "API_KEYS"

// Setting describes one configurable value for -help and the documentation.
type Setting struct {
	Flag    string // empty for environment-only settings
	Env     string
	Default string
	Usage   string
}

// Load builds the configuration from the built-in defaults, overridden by
// TANDEM_GATEWAY_* environment variables (an empty variable counts as
// unset), overridden by command-line flags, and validates it. It returns an
// error wrapping flag.ErrHelp when -h or -help is given.
func Load(args []string, getenv func(string) string) (Config, error) {
	cfg := Default()
	fs := newFlagSet(&cfg)

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		if raw := getenv(env); raw != "" {
			if err := fs.Set(f.Name, raw); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, raw, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (all settings are flags or %s* variables)", fs.Arg(0), EnvPrefix)
	}

	// A static address list or a pool list replaces the default DNS target;
	// setting both explicitly is ambiguous and left for Validate to reject.
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if (explicit["upstream-addresses"] || explicit["upstream-pools"]) && !explicit["upstream-target"] {
		cfg.Upstream.Target = ""
	}

	cfg.Auth.APIKeys = splitList(getenv(envAPIKeys))

	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// Settings lists every setting with its flag, variable and default.
func Settings() []Setting {
	cfg := Default()
	var out []Setting
	newFlagSet(&cfg).VisitAll(func(f *flag.Flag) {
		out = append(out, Setting{Flag: f.Name, Env: envName(f.Name), Default: f.DefValue, Usage: f.Usage})
	})
	return append(out, Setting{
		Env:   envAPIKeys,
		Usage: "comma-separated API keys (environment only: a flag would show keys in the process list)",
	})
}

// WriteUsage prints the settings table that -help shows.
func WriteUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: tandem-gateway [flags]\n\nEvery flag can also be set with its environment variable; flags win.\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tENVIRONMENT\tDEFAULT\tMEANING")
	for _, s := range Settings() {
		flagName := "-"
		if s.Flag != "" {
			flagName = "-" + s.Flag
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", flagName, s.Env, s.Default, s.Usage)
	}
	tw.Flush()
	// Tracing is not a TANDEM_GATEWAY_* setting: it follows OpenTelemetry's
	// standard variables, which tools and charts already know.
	fmt.Fprintf(w, "\nTracing is configured by the standard OTEL_* variables; OTEL_EXPORTER_OTLP_ENDPOINT\n"+
		"(e.g. http://127.0.0.1:4317) turns it on. See docs/gateway.md, \"Tracing\".\n")
}

// newFlagSet binds every flag to its field in cfg, with cfg's current values
// as defaults. It is the single list of settings.
func newFlagSet(cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("tandem-gateway", flag.ContinueOnError)
	// Load reports errors itself; -help output comes from WriteUsage.
	fs.SetOutput(io.Discard)

	h := &cfg.HTTP
	fs.StringVar(&h.ListenAddr, "listen-addr", h.ListenAddr, "host:port of the public HTTP API (port 0 picks a free port; the bound address is logged)")
	fs.DurationVar(&h.RequestTimeout, "request-timeout", h.RequestTimeout, "overall budget for one API request, upstream calls included")
	fs.DurationVar(&h.ReadHeaderTimeout, "http-read-header-timeout", h.ReadHeaderTimeout, "http.Server ReadHeaderTimeout")
	fs.DurationVar(&h.ReadTimeout, "http-read-timeout", h.ReadTimeout, "http.Server ReadTimeout (headers and body)")
	fs.DurationVar(&h.WriteTimeout, "http-write-timeout", h.WriteTimeout, "http.Server WriteTimeout; must exceed request-timeout")
	fs.DurationVar(&h.IdleTimeout, "http-idle-timeout", h.IdleTimeout, "http.Server IdleTimeout for keep-alive connections")
	fs.IntVar(&h.MaxHeaderBytes, "http-max-header-bytes", h.MaxHeaderBytes, "http.Server MaxHeaderBytes")

	fs.StringVar(&cfg.Admin.ListenAddr, "admin-addr", cfg.Admin.ListenAddr, "host:port of the admin listener serving /metrics (empty disables it)")

	u := &cfg.Upstream
	fs.StringVar(&u.Target, "upstream-target", u.Target, "gRPC target of the core, e.g. dns:///tandem-core-headless:50051")
	fs.Var((*poolsValue)(&u.Pools), "upstream-pools", "comma-separated <model id>=<gRPC target URI> pairs, one core pool per model, e.g. all-MiniLM-L6-v2=dns:///tandem-core-headless:50051 (instead of upstream-target)")
	fs.Var((*listValue)(&u.Addresses), "upstream-addresses", "comma-separated static host:port list of cores, used instead of upstream-target")
	fs.DurationVar(&u.CallTimeout, "upstream-timeout", u.CallTimeout, "deadline of one upstream call (capped by what is left of request-timeout)")
	fs.IntVar(&u.MaxAttempts, "upstream-max-attempts", u.MaxAttempts, "attempts per upstream call, first included; only UNAVAILABLE is retried (1-5)")
	fs.DurationVar(&u.RetryInitialBackoff, "upstream-retry-initial-backoff", u.RetryInitialBackoff, "initial retry backoff (randomised by gRPC)")
	fs.DurationVar(&u.RetryMaxBackoff, "upstream-retry-max-backoff", u.RetryMaxBackoff, "maximum retry backoff")
	fs.DurationVar(&u.KeepaliveTime, "upstream-keepalive-time", u.KeepaliveTime, "gRPC keepalive ping interval (at least 10s: the core's enforcement policy)")
	fs.DurationVar(&u.KeepaliveTimeout, "upstream-keepalive-timeout", u.KeepaliveTimeout, "gRPC keepalive ping ack timeout")
	fs.DurationVar(&u.DNSMinResolutionInterval, "upstream-dns-min-interval", u.DNSMinResolutionInterval, "shortest time between two DNS resolutions of upstream-target (gRPC's default: 30s)")
	fs.DurationVar(&u.DNSRefreshInterval, "upstream-dns-refresh-interval", u.DNSRefreshInterval, "resolve upstream-target again this often, so new cores are found without waiting for a connection to end (0: only then)")
	fs.IntVar(&u.MaxEmbeddingDimension, "upstream-max-dimension", u.MaxEmbeddingDimension, "largest embedding dimension accepted from the core; sizes the largest gRPC message received")
	fs.DurationVar(&u.ModelInfoTTL, "model-cache-ttl", u.ModelInfoTTL, "how long the core's GetModelInfo answer is cached")

	fs.DurationVar(&cfg.Readiness.CheckTimeout, "readiness-timeout", cfg.Readiness.CheckTimeout, "timeout of the grpc.health.v1 check behind /readyz")
	fs.DurationVar(&cfg.Readiness.CacheTTL, "readiness-cache-ttl", cfg.Readiness.CacheTTL, "how long a /readyz health check result is reused")

	l := &cfg.Limits
	fs.Int64Var(&l.MaxBodyBytes, "max-body-bytes", l.MaxBodyBytes, "largest accepted request body in bytes (413 above)")
	fs.IntVar(&l.MaxInputs, "max-inputs", l.MaxInputs, "most texts in one embeddings request (the core's limit applies if stricter)")
	fs.IntVar(&l.MaxTextBytes, "max-text-bytes", l.MaxTextBytes, "largest text in UTF-8 bytes (the core's limit applies if stricter)")
	fs.IntVar(&l.MaxInFlight, "max-in-flight", l.MaxInFlight, "most concurrent API requests; more get 429 at once (0 = no limit)")
	fs.Float64Var(&l.RateLimitPerSecond, "rate-limit-rps", l.RateLimitPerSecond, "requests per second per API key, or per client IP when auth is off (0 = off)")
	fs.IntVar(&l.RateLimitBurst, "rate-limit-burst", l.RateLimitBurst, "token bucket size of the rate limit")
	fs.DurationVar(&l.RateLimitIdleTimeout, "rate-limit-idle-timeout", l.RateLimitIdleTimeout, "forget a client's bucket after this long without requests")
	fs.IntVar(&l.RateLimitMaxClients, "rate-limit-max-clients", l.RateLimitMaxClients, "most clients tracked at once; new clients beyond it get 429")
	fs.Var((*prefixListValue)(&l.TrustedProxies), "trusted-proxies", "comma-separated CIDRs or IPs of proxies whose client-ip-header is believed (\"none\": trust no proxy)")
	fs.StringVar(&l.ClientIPHeader, "client-ip-header", l.ClientIPHeader, "header trusted proxies name the client in: X-Forwarded-For or Forwarded")

	fs.StringVar(&cfg.Auth.APIKeysFile, "api-keys-file", cfg.Auth.APIKeysFile, "file of API keys, one per line; with any key configured, requests need Authorization: Bearer <key>")
	fs.DurationVar(&cfg.Auth.APIKeysReloadInterval, "api-keys-reload-interval", cfg.Auth.APIKeysReloadInterval, "how often api-keys-file is re-read, so rotated keys apply without a restart (at most 1m)")

	fs.DurationVar(&cfg.Lifecycle.DrainDelay, "drain-delay", cfg.Lifecycle.DrainDelay, "after SIGTERM, keep serving this long with /readyz failing before shutting down")
	fs.DurationVar(&cfg.Lifecycle.ShutdownTimeout, "shutdown-timeout", cfg.Lifecycle.ShutdownTimeout, "after the drain, wait this long for in-flight requests (at least request-timeout)")

	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: DEBUG, INFO, WARN or ERROR")
	return fs
}

func envName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listValue is a comma-separated list flag.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error {
	*l = splitList(s)
	return nil
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// prefixListValue is a comma-separated list of CIDRs or single IPs.
type prefixListValue []netip.Prefix

func (l *prefixListValue) String() string {
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// Set parses the list; "none" is the empty list, which an environment
// variable cannot express otherwise (an empty variable counts as unset).
func (l *prefixListValue) Set(s string) error {
	var out []netip.Prefix
	if strings.TrimSpace(s) == "none" {
		*l = out
		return nil
	}
	for _, part := range splitList(s) {
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return fmt.Errorf("%q: want a CIDR (10.0.0.0/8) or an IP address", part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	*l = out
	return nil
}
