package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
)

// TestShutdownDrainsWithoutDroppingAcceptedRequests sends a steady stream
// of requests to a slow core, cancels run's context (what SIGTERM does), and
// checks the graceful-shutdown promise: /readyz turns 503 while requests are
// still served, every request that reached the gateway gets its 200, and the
// only failures are refused connections after the listener has closed.
func TestShutdownDrainsWithoutDroppingAcceptedRequests(t *testing.T) {
	core := fakecore.Start(t)
	core.SetEmbed(func(ctx context.Context, req *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
		select {
		case <-time.After(150 * time.Millisecond): // slow enough to be in flight at shutdown
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return fakecore.DefaultEmbed(ctx, req)
	})
	g := startGateway(t, nil, "-upstream-addresses", core.Addr, "-drain-delay", "2s")
	waitForStatus(t, "http://"+g.api+"/readyz", http.StatusOK)

	// A new connection per request: a refused connection then clearly means
	// "not accepted", with no keep-alive races muddying the count.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: patience}

	const workers, perWorker = 4, 40 // bounded: at most 160 requests
	var (
		ok, failedAfterCancel atomic.Int64
		cancelled             atomic.Bool
		mu                    sync.Mutex
		problems              []string
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				sentAfterCancel := cancelled.Load()
				resp, body, err := postEmbeddings(client, g.api, embeddingsBody)
				switch {
				case err != nil && sentAfterCancel:
					failedAfterCancel.Add(1)
					return // the listener is closed: nothing more will be accepted
				case err != nil:
					report("request failed before shutdown began: %v", err)
					return
				case resp.StatusCode != http.StatusOK:
					report("status %d: %s", resp.StatusCode, body)
				default:
					ok.Add(1)
				}
			}
		})
	}

	// Let traffic flow, then send the "SIGTERM".
	deadline := time.Now().Add(patience)
	for ok.Load() < workers && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancelled.Store(true)
	g.cancel()

	// Readiness fails at once, while the gateway still serves.
	sawNotReady := false
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + g.api + "/readyz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			sawNotReady = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !sawNotReady {
		t.Error("/readyz did not turn 503 during the drain")
	}

	wg.Wait()
	if err := g.stop(t); err != nil {
		t.Errorf("run returned %v after a graceful shutdown", err)
	}

	for _, p := range problems {
		t.Errorf("a graceful shutdown must prevent this: %s", p)
	}
	// Every request that reached the core was answered with a 200: none was
	// cut off by the shutdown. (No retries happen here: the core never fails.)
	if served := core.EmbedCalls(); ok.Load() != served {
		t.Errorf("the core served %d requests but clients got %d successes", served, ok.Load())
	}
	if ok.Load() <= workers {
		t.Errorf("only %d successful requests; the test did not exercise the drain", ok.Load())
	}
	t.Logf("%d requests succeeded, %d failed to connect after cancellation", ok.Load(), failedAfterCancel.Load())
}
