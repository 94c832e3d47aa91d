package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/testsupport/fakecore"
)

// These tests run the real gateway in-process through run(), on ports the
// kernel picks, against in-process fake cores.

// patience bounds every wait; generous, because tests assert behaviour, not
// speed, and CI machines are noisy.
const patience = 15 * time.Second

// gateway is a gateway started with run().
type gateway struct {
	api, admin string
	cancel     context.CancelFunc
	done       chan error
	logs       *logWatcher
}

// startGateway runs the gateway with args appended to settings that make it
// listen on free ports, and waits until /healthz answers. env replaces the
// process environment, so a developer's TANDEM_GATEWAY_* variables do not
// leak into tests.
func startGateway(t *testing.T, env map[string]string, args ...string) *gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{cancel: cancel, done: make(chan error, 1), logs: newLogWatcher()}
	base := []string{"-listen-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-drain-delay", "0s", "-log-level", "debug"}
	go func() {
		g.done <- run(ctx, append(base, args...), func(k string) string { return env[k] }, g.logs, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(patience):
			t.Error("gateway did not stop")
		}
	})

	g.api = g.logs.waitForListener(t, "api", g.done)
	g.admin = g.logs.waitForListener(t, "admin", g.done)
	waitForStatus(t, "http://"+g.api+"/healthz", http.StatusOK)
	return g
}

// stop cancels run's context and returns what run returned.
func (g *gateway) stop(t *testing.T) error {
	t.Helper()
	g.cancel()
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup
		return err
	case <-time.After(2 * patience):
		t.Fatal("run did not return after cancellation")
		return nil
	}
}

func waitForStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v (status %v), want %d", url, err, statusOf(resp), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusOf(resp *http.Response) any {
	if resp == nil {
		return nil
	}
	return resp.StatusCode
}

func postEmbeddings(client *http.Client, api, body string, headers ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+api+"/v1/embeddings", strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

const embeddingsBody = `{"model":"all-MiniLM-L6-v2","input":["hello world","goodbye"]}`

func TestRunServesTheAPIEndToEnd(t *testing.T) {
	core := fakecore.Start(t)
	g := startGateway(t, nil, "-upstream-target", "dns:///"+core.Addr)
	waitForStatus(t, "http://"+g.api+"/readyz", http.StatusOK)

	resp, body, err := postEmbeddings(http.DefaultClient, g.api, embeddingsBody, "X-Request-Id", "e2e-1")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/embeddings: %v %v %s", err, statusOf(resp), body)
	}
	var out struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Model string `json:"model"`
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.Data) != 2 || len(out.Data[0].Embedding) != fakecore.Dimension {
		t.Fatalf("response: %v %s", err, body)
	}
	if resp.Header.Get("X-Request-Id") != "e2e-1" || core.Calls()[0].RequestID != "e2e-1" {
		t.Error("request id not returned or not passed to the core")
	}
	if !strings.HasPrefix(resp.Header.Get("Server-Timing"), "gateway;dur=") {
		t.Errorf("Server-Timing = %q", resp.Header.Get("Server-Timing"))
	}

	models, err := http.Get("http://" + g.api + "/v1/models")
	if err != nil || models.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/models: %v %v", err, statusOf(models))
	}
	models.Body.Close()

	metrics, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{
		`tandem_gateway_http_requests_total{code="200",model="default",outcome="ok",route="embeddings"} 1`,
		`tandem_gateway_upstream_calls_total{code="OK",method="Embed",model="default"} 1`,
		`go_goroutines`,
	} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Metrics are not on the public port.
	if resp, err := http.Get("http://" + g.api + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public /metrics: %d, want 404", resp.StatusCode)
		}
	}

	if !g.logs.contains(`"request_id":"e2e-1"`) {
		t.Error("logs lack the request id")
	}
	if err := g.stop(t); err != nil {
		t.Errorf("run returned %v after a clean shutdown", err)
	}
}

func TestRunWithAPIKeysFromTheEnvironment(t *testing.T) {
	core := fakecore.Start(t)
	g := startGateway(t, map[string]string{"TANDEM_GATEWAY_API_KEYS": "sk-one,sk-two"}, "-upstream-addresses", core.Addr)

	resp, _, err := postEmbeddings(http.DefaultClient, g.api, embeddingsBody)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a key: %v %v, want 401", err, statusOf(resp))
	}
	resp, body, err := postEmbeddings(http.DefaultClient, g.api, embeddingsBody, "Authorization", "Bearer sk-two")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("with a key: %v %v %s", err, statusOf(resp), body)
	}
	if g.logs.contains("sk-two") {
		t.Error("an API key was logged")
	}
}

func TestRunRejectsAnInvalidConfiguration(t *testing.T) {
	err := run(t.Context(), []string{"-upstream-keepalive-time", "1s", "-listen-addr", "nowhere"},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "too_many_pings") || !strings.Contains(err.Error(), "listen-addr") {
		t.Errorf("err = %v, want every problem reported", err)
	}
}

func TestRunHelp(t *testing.T) {
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"-help"}, func(string) string { return "" }, io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("err = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stderr.String(), "TANDEM_GATEWAY_LISTEN_ADDR") {
		t.Errorf("usage lacks the settings table:\n%s", stderr.String())
	}
}

// logWatcher is the gateway's stdout: it keeps the JSON log lines and
// reports the addresses the servers bound.
type logWatcher struct {
	mu        sync.Mutex
	partial   []byte
	lines     []string
	listeners map[string]string
	changed   chan struct{}
}

func newLogWatcher() *logWatcher {
	return &logWatcher{listeners: map[string]string{}, changed: make(chan struct{})}
}

func (w *logWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		w.lines = append(w.lines, line)

		var rec struct{ Msg, Server, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			w.listeners[rec.Server] = rec.Addr
			close(w.changed)
			w.changed = make(chan struct{})
		}
	}
}

// waitForListener returns the address the named server listens on, failing
// if run returns first.
func (w *logWatcher) waitForListener(t *testing.T, server string, done chan error) string {
	t.Helper()
	timeout := time.After(patience)
	for {
		w.mu.Lock()
		addr, changed := w.listeners[server], w.changed
		w.mu.Unlock()
		if addr != "" {
			return addr
		}
		select {
		case <-changed:
		case err := <-done:
			done <- err
			t.Fatalf("run returned before the %s server listened: %v", server, err)
		case <-timeout:
			t.Fatalf("the %s server never logged its address; logs:\n%s", server, w.String())
		}
	}
}

func (w *logWatcher) contains(s string) bool { return strings.Contains(w.String(), s) }

func (w *logWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}
