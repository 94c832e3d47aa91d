package lifecycle

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func listener(t *testing.T, name string, h http.Handler) Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return Listener{Name: name, Server: &http.Server{Handler: h, ReadHeaderTimeout: time.Second}, Listener: ln}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestServeDrainsThenShutsDown(t *testing.T) {
	api := listener(t, "api", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	var draining atomic.Bool
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Config{API: api, StartDraining: func() { draining.Store(true) }, DrainDelay: 50 * time.Millisecond, ShutdownTimeout: time.Second}, quiet)
	}()

	url := "http://" + api.Listener.Addr().String()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("server not serving: %v", err)
	}
	resp.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v after a clean shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if !draining.Load() {
		t.Error("StartDraining was not called")
	}
	if _, err := http.Get(url); err == nil {
		t.Error("server still accepts connections after Serve returned")
	}
}

func TestServeReturnsAServerFailure(t *testing.T) {
	api := listener(t, "api", http.NotFoundHandler())
	admin := listener(t, "admin", http.NotFoundHandler())
	admin.Listener.Close() // makes the admin server's Serve fail at once

	done := make(chan error, 1)
	go func() {
		done <- Serve(t.Context(), Config{API: api, Admin: admin, StartDraining: func() {}, DrainDelay: time.Hour, ShutdownTimeout: time.Second}, quiet)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve = nil, want the admin server's failure")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after a server failed (it must skip the drain delay)")
	}
}
