// Command tandem-gateway is the HTTP edge of Tandem: an OpenAI-compatible
// embeddings API in front of the Python inference core, which it calls over
// gRPC. Run it with -help for its settings; docs/gateway.md explains them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/tandem-inference/tandem/go-gateway/internal/auth"
	"github.com/tandem-inference/tandem/go-gateway/internal/config"
	"github.com/tandem-inference/tandem/go-gateway/internal/health"
	"github.com/tandem-inference/tandem/go-gateway/internal/httpapi"
	"github.com/tandem-inference/tandem/go-gateway/internal/lifecycle"
	"github.com/tandem-inference/tandem/go-gateway/internal/limits"
	"github.com/tandem-inference/tandem/go-gateway/internal/logging"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// traceFlushTimeout bounds the export of the last spans at exit, so that an
// unreachable collector delays the exit by seconds, not by the exporter's
// retry budget.
const traceFlushTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling: a second signal
	// then kills the process at once, the operator's way out of a long drain.
	go func() {
		<-ctx.Done()
		stop()
	}()

	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "tandem-gateway: %v\n", err)
		os.Exit(1)
	}
}

// run builds the gateway from its configuration and serves until ctx is
// cancelled, then shuts down gracefully. Logs go to stdout as JSON; usage
// goes to stderr. Tests call run directly, with their own arguments,
// environment and writers.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == memoryPlanCommand {
		return printMemoryPlan(args[1:], getenv, stdout, stderr)
	}
	cfg, err := config.Load(args, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			config.WriteUsage(stderr)
		}
		return err
	}

	logger := logging.New(stdout, cfg.LogLevel)
	m := metrics.New()

	tracing, err := telemetry.Setup(ctx, getenv, serviceVersion())
	if err != nil {
		return fmt.Errorf("invalid tracing configuration:\n%w", err)
	}
	installTracingGlobals(tracing, logger)
	// Deferred first, so it runs last: after the servers have drained and
	// the core connection is closed, when no span can start any more.
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), traceFlushTimeout)
		defer cancel()
		if err := tracing.Shutdown(flushCtx); err != nil {
			// Not a reason to exit non-zero: every request was served.
			logger.Warn("could not export the last spans", "error", err)
		}
	}()

	keys, err := auth.Load(cfg.Auth.APIKeysFile, cfg.Auth.APIKeys)
	if err != nil {
		return err
	}
	if cfg.Auth.APIKeysFile != "" {
		go keys.WatchFile(ctx, cfg.Auth.APIKeysFile, cfg.Auth.APIKeys, cfg.Auth.APIKeysReloadInterval, logger)
	}
	clientIPHeader, err := limits.ParseForwardingHeader(cfg.Limits.ClientIPHeader)
	if err != nil {
		return fmt.Errorf("client-ip-header: %w", err)
	}

	pools, err := upstream.NewPools(cfg.Upstream, cfg.Limits, m, tracing)
	if err != nil {
		return err
	}
	// Deferred, so it runs after lifecycle.Serve has finished every
	// in-flight request that might still be using the connections.
	defer upstream.ClosePools(pools)

	readiness := health.NewReadiness(readinessBackends(pools), cfg.Readiness.CheckTimeout, cfg.Readiness.CacheTTL,
		func(model string, ready bool) { m.UpstreamReady.WithLabelValues(model).Set(boolGauge(ready)) }, logger)
	api := httpapi.NewServer(httpapi.Deps{
		Logger:    logger,
		Metrics:   m,
		Pools:     apiPools(pools),
		Readiness: readiness,
		Keys:      keys,
		RateLimiter: limits.NewRateLimiter(limits.RateConfig{
			PerSecond:   cfg.Limits.RateLimitPerSecond,
			Burst:       cfg.Limits.RateLimitBurst,
			IdleTimeout: cfg.Limits.RateLimitIdleTimeout,
			MaxClients:  cfg.Limits.RateLimitMaxClients,
		}),
		ClientIP: limits.NewClientIP(cfg.Limits.TrustedProxies, clientIPHeader),
		InFlight: limits.NewInFlight(cfg.Limits.MaxInFlight),
		Limits: httpapi.Limits{
			MaxBodyBytes:   cfg.Limits.MaxBodyBytes,
			RequestTimeout: cfg.HTTP.RequestTimeout,
			Input:          httpapi.InputLimits{MaxInputs: cfg.Limits.MaxInputs, MaxTextBytes: cfg.Limits.MaxTextBytes},
		},
		Tracing: tracing,
	})

	apiListener, err := listen(ctx, "api", cfg.HTTP.ListenAddr, newHTTPServer(cfg.HTTP, api, logger))
	if err != nil {
		return err
	}
	var adminListener lifecycle.Listener
	if cfg.Admin.ListenAddr != "" {
		adminMux := http.NewServeMux()
		adminMux.Handle("GET /metrics", m.Handler())
		adminListener, err = listen(ctx, "admin", cfg.Admin.ListenAddr, newHTTPServer(cfg.HTTP, adminMux, logger))
		if err != nil {
			apiListener.Listener.Close()
			return err
		}
	}

	logger.Info("starting tandem-gateway",
		"upstream_target", cfg.Upstream.Target,
		"upstream_addresses", cfg.Upstream.Addresses,
		"upstream_pools", (*poolsForLog)(&cfg.Upstream.Pools),
		"auth", keys.Enabled(), "api_keys", keys.Len(),
		"rate_limit_rps", cfg.Limits.RateLimitPerSecond,
		"trusted_proxies", cfg.Limits.TrustedProxies,
		"max_in_flight", cfg.Limits.MaxInFlight,
		"tracing", tracing.Enabled(),
	)
	return lifecycle.Serve(ctx, lifecycle.Config{
		API:             apiListener,
		Admin:           adminListener,
		StartDraining:   readiness.StartDraining,
		DrainDelay:      cfg.Lifecycle.DrainDelay,
		ShutdownTimeout: cfg.Lifecycle.ShutdownTimeout,
	}, logger)
}

// readinessBackends checks each pool over its own channel.
func readinessBackends(pools []upstream.Pool) []health.Backend {
	out := make([]health.Backend, len(pools))
	for i, p := range pools {
		out[i] = health.Backend{Model: p.Label(), Check: p.Client.CheckServing}
	}
	return out
}

// apiPools hands each pool's client and model cache to the HTTP API.
func apiPools(pools []upstream.Pool) []httpapi.Pool {
	out := make([]httpapi.Pool, len(pools))
	for i, p := range pools {
		out[i] = httpapi.Pool{Model: p.Model, Core: p.Client, Models: p.Models}
	}
	return out
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// poolsForLog logs the pools as "model=target" strings.
type poolsForLog []config.Pool

func (p *poolsForLog) LogValue() slog.Value {
	parts := make([]string, len(*p))
	for i, pool := range *p {
		parts[i] = pool.Model + "=" + pool.Target
	}
	return slog.AnyValue(parts)
}

// installTracingGlobals sets OpenTelemetry's process-wide state, here and
// nowhere else. The gateway's own instrumentation gets its provider and
// propagator passed in; the globals are for any library that only knows
// otel.GetTracerProvider and otel.GetTextMapPropagator. The propagator is
// set even with tracing off, as it costs nothing and keeps such a library
// speaking W3C trace context rather than nothing. With tracing off the
// global tracer provider stays OpenTelemetry's no-op.
func installTracingGlobals(t telemetry.Tracing, logger *slog.Logger) {
	otel.SetTextMapPropagator(t.Propagator)
	if !t.Enabled() {
		return
	}
	otel.SetTracerProvider(t.Provider)
	// Export failures (a collector that is down) would otherwise go to
	// stderr as plain text; as warnings they land in the JSON logs.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "error", err)
	}))
}

// serviceVersion is the gateway's service.version in traces: the main
// module's version as stamped by the go command (a tag or pseudo-version,
// when built with VCS information), or "" when it has none.
func serviceVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
}

// newHTTPServer applies the configured timeouts: without them one slow or
// idle client can hold a connection and its goroutine forever.
func newHTTPServer(cfg config.HTTP, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

func listen(ctx context.Context, name, addr string, srv *http.Server) (lifecycle.Listener, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return lifecycle.Listener{}, fmt.Errorf("listen on %s for the %s server: %w", addr, name, err)
	}
	return lifecycle.Listener{Name: name, Server: srv, Listener: ln}, nil
}
