// Package lifecycle runs the gateway's HTTP servers and shuts them down
// without dropping requests.
//
// The order on shutdown matters on Kubernetes. When a pod is deleted, the
// kubelet sends SIGTERM while, concurrently, the endpoints controller removes
// the pod from its Services; load balancers and kube-proxy learn about that
// a little later. A server that stopped accepting connections right away
// would refuse requests still being routed to it. So:
//
//  1. mark not ready (/readyz answers 503), keep serving;
//  2. wait DrainDelay, during which the pod disappears from endpoints;
//  3. http.Server.Shutdown: stop accepting, finish in-flight requests,
//     bounded by ShutdownTimeout;
//  4. only then return, so the caller closes the upstream connection that
//     in-flight requests were still using.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listener pairs a server with the listener it serves on. Listening is done
// by the caller so that it can learn the bound address (port 0) first.
type Listener struct {
	Name     string
	Server   *http.Server
	Listener net.Listener
}

// Config says how to serve and shut down.
type Config struct {
	// API is the public server, drained gracefully.
	API Listener
	// Admin is the metrics server; optional (nil Server). It is shut down
	// after the API so metrics stay scrapeable during the drain.
	Admin Listener
	// StartDraining is called first on shutdown; it turns /readyz to 503.
	StartDraining   func()
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
}

// adminShutdownTimeout bounds closing the admin server, which only serves
// short scrapes.
const adminShutdownTimeout = 5 * time.Second

// Serve runs the servers until ctx is cancelled (the shutdown signal) or a
// server fails, then shuts down as described in the package comment. It
// returns nil after a clean shutdown.
func Serve(ctx context.Context, cfg Config, logger *slog.Logger) error {
	servers := []Listener{cfg.API}
	if cfg.Admin.Server != nil {
		servers = append(servers, cfg.Admin)
	}

	serveErr := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			logger.Info("listening", "server", s.Name, "addr", s.Listener.Addr().String())
			if err := s.Server.Serve(s.Listener); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("%s server: %w", s.Name, err)
			}
		}()
	}

	var failure error
	select {
	case <-ctx.Done():
		logger.Info("shutdown requested; draining", "drain_delay", cfg.DrainDelay.String())
	case failure = <-serveErr:
		logger.Error("server failed; shutting down", "error", failure)
	}

	cfg.StartDraining()
	if failure == nil {
		select {
		case <-time.After(cfg.DrainDelay):
		case failure = <-serveErr:
			logger.Error("server failed while draining", "error", failure)
		}
	}

	// A fresh context: the signal context is already cancelled, and the
	// shutdown must get its own full budget.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	logger.Info("stopping the API server; waiting for in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	if err := cfg.API.Server.Shutdown(shutdownCtx); err != nil {
		// Requests still running are cut off now; report it, as clients saw
		// errors.
		_ = cfg.API.Server.Close()
		failure = errors.Join(failure, fmt.Errorf("graceful shutdown of the API server: %w", err))
	}

	if cfg.Admin.Server != nil {
		adminCtx, cancelAdmin := context.WithTimeout(context.WithoutCancel(ctx), adminShutdownTimeout)
		defer cancelAdmin()
		if err := cfg.Admin.Server.Shutdown(adminCtx); err != nil {
			_ = cfg.Admin.Server.Close()
			failure = errors.Join(failure, fmt.Errorf("shutdown of the admin server: %w", err))
		}
	}

	if failure == nil {
		logger.Info("shutdown complete")
	}
	return failure
}
