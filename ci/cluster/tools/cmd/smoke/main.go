// Command smoke checks the cluster's network from inside a pod
// (`make cluster-smoke`): `smoke serve` answers HTTP with its pod name;
// `smoke check` resolves Service names through the cluster DNS and calls the
// server through its Service, failing unless everything answers. Each check
// is bounded in attempts and time.
//
//	smoke serve -listen :8080
//	smoke check -resolve kubernetes.default.svc.cluster.local -get http://smoke-server:8080/
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: smoke serve|check [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "check":
		err = check(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "smoke: %v\n", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", ":8080", "address to serve on")
	_ = fs.Parse(args)
	name, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "ok %s\n", name) })
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Printf("serving on %s\n", *listen)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func check(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	var names, urls listFlag
	fs.Var(&names, "resolve", "name that must resolve (repeatable)")
	fs.Var(&urls, "get", "URL that must answer 200 (repeatable)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	for _, name := range names {
		addrs, err := retry(ctx, func() ([]string, error) { return net.DefaultResolver.LookupHost(ctx, name) })
		if err != nil {
			return fmt.Errorf("resolve %s: %w", name, err)
		}
		fmt.Printf("resolved %s -> %s\n", name, strings.Join(addrs, ","))
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, url := range urls {
		body, err := retry(ctx, func() (string, error) {
			resp, err := client.Get(url)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("status %d", resp.StatusCode)
			}
			return strings.TrimSpace(string(b)), nil
		})
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		fmt.Printf("GET %s -> %s\n", url, body)
	}
	return nil
}

// retry calls f once a second until it succeeds or ctx ends (at most 120 tries).
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var last error
	for i := 0; i < 120; i++ {
		v, err := f()
		if err == nil {
			return v, nil
		}
		last = err
		select {
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(time.Second):
		}
	}
	var zero T
	return zero, last
}
