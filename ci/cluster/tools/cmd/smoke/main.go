// Command smoke checks the cluster's network from inside a pod
// (`make cluster-smoke`): `smoke serve` answers HTTP with its pod name;
// `smoke check` resolves Service names through the cluster DNS and calls the
// server through its Service, failing unless everything answers; with
// -blocked, it fails unless connecting to a URL times out (a NetworkPolicy
// drops the packets). Each check is bounded in attempts and time.
//
//	smoke serve -listen :8080
//	smoke check -resolve kubernetes.default.svc.cluster.local -get http://smoke-server:8080/
//	smoke check -blocked http://10.96.12.34:8080/
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
	var names, urls, blocked listFlag
	fs.Var(&names, "resolve", "name that must resolve (repeatable)")
	fs.Var(&urls, "get", "URL that must answer 200 (repeatable)")
	fs.Var(&blocked, "blocked", "URL whose connections must time out (repeatable)")
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
	for _, url := range blocked {
		if err := checkBlocked(ctx, url); err != nil {
			return fmt.Errorf("blocked %s: %w", url, err)
		}
	}
	return nil
}

// blockedStreak is how many connection attempts in a row must time out: one
// could be a lost packet, three in a row (each with the kernel's own SYN
// retransmissions) are a policy dropping them.
const blockedStreak = 3

// checkBlocked succeeds once blockedStreak connection attempts to url in a
// row time out. An answer resets the streak (the policy may not be enforced
// yet, so the check waits for it, bounded by ctx); a refused connection or
// any other error fails at once: a dropped packet is never refused.
func checkBlocked(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 3 * time.Second}
	streak, answered := 0, 0
	for streak < blockedStreak {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: still answering (%d answers, last %d attempts timed out)", err, answered, streak)
		}
		start := time.Now()
		resp, err := client.Get(url)
		switch {
		case err == nil:
			resp.Body.Close()
			answered++
			streak = 0
			time.Sleep(time.Second)
		case isTimeout(err):
			streak++
			fmt.Printf("blocked %s: attempt timed out after %s\n", url, time.Since(start).Round(time.Millisecond))
		default:
			return fmt.Errorf("expected a timeout, got: %w", err)
		}
	}
	fmt.Printf("blocked %s: %d attempts in a row timed out (answered %d times before)\n", url, streak, answered)
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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
