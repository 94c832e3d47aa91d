// Command tandem-load is Tandem's benchmark load generator: embedding requests
// over gRPC (to the core) or HTTP (to the core's or the gateway's JSON API),
// closed loop (fixed concurrency) or open loop (fixed rate), always bounded in
// both request count and time. It prints one JSON object with throughput,
// latency percentiles, errors by kind and its own CPU time, because on a small
// machine the load generator competes with the server for the same cores.
//
// It is written in Go rather than Python so that it costs the server as
// little CPU as possible. Targets are meant to be loopback addresses; the
// benchmarks never point it anywhere else.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
)

type options struct {
	mode        string // grpc | http
	target      string // host:port (grpc) or base URL (http)
	path        string // http path
	openAI      bool   // http body shape: OpenAI ("input") or the core's ("texts")
	corpus      string // file, one text per line
	texts       int    // texts per request
	concurrency int    // closed loop callers; open loop: max outstanding
	rate        float64
	requests    int
	duration    time.Duration
	timeout     time.Duration
	warmup      int
}

// Report is what tandem-load prints.
type Report struct {
	Requests         int            `json:"requests"`
	Texts            int            `json:"texts"`
	Errors           map[string]int `json:"errors"`
	WallSeconds      float64        `json:"wall_seconds"`
	TextsPerSecond   float64        `json:"texts_per_second"`
	RequestsPerSec   float64        `json:"requests_per_second"`
	ClientCPUSeconds float64        `json:"client_cpu_seconds"`
	LatencyMs        Percentiles    `json:"latency_ms"`
}

// Percentiles of the successful requests' latencies, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// caller sends request number i and returns how many texts it embedded.
type caller func(ctx context.Context, i int) (int, error)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "tandem-load: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	opts, err := parseFlags(args)
	if err != nil {
		return err
	}
	corpus, err := readCorpus(opts.corpus)
	if err != nil {
		return err
	}
	call, closeFn, err := newCaller(opts, corpus)
	if err != nil {
		return err
	}
	defer closeFn()

	ctx := context.Background()
	for i := range opts.warmup {
		if _, err := call(ctx, i); err != nil {
			return fmt.Errorf("warm-up request %d: %w", i, err)
		}
	}
	report := generate(ctx, opts, call)
	return json.NewEncoder(stdout).Encode(report)
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("tandem-load", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "grpc", "grpc or http")
	fs.StringVar(&o.target, "target", "127.0.0.1:50051", "grpc: host:port; http: base URL")
	fs.StringVar(&o.path, "path", "/v1/embeddings", "http: request path")
	fs.BoolVar(&o.openAI, "openai", true, "http: OpenAI body ({model, input}) instead of the core's ({texts})")
	fs.StringVar(&o.corpus, "corpus", "", "file with one text per line (required)")
	fs.IntVar(&o.texts, "texts", 1, "texts per request")
	fs.IntVar(&o.concurrency, "concurrency", 1, "closed loop: concurrent callers; open loop: most requests outstanding")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: requests per second (0 = closed loop)")
	fs.IntVar(&o.requests, "requests", 1000, "stop after this many requests")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "stop after this long")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline of each request")
	fs.IntVar(&o.warmup, "warmup", 0, "sequential requests before measuring")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.corpus == "":
		return o, errors.New("-corpus is required")
	case o.mode != "grpc" && o.mode != "http":
		return o, fmt.Errorf("-mode must be grpc or http, not %q", o.mode)
	case o.texts < 1 || o.concurrency < 1 || o.requests < 1 || o.duration <= 0:
		return o, errors.New("-texts, -concurrency, -requests and -duration must be positive")
	}
	return o, nil
}

func readCorpus(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open corpus: %w", err)
	}
	defer f.Close()
	var texts []string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); line != "" {
			texts = append(texts, line)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read corpus: %w", err)
	}
	if len(texts) == 0 {
		return nil, errors.New("corpus is empty")
	}
	return texts, nil
}

// pick returns the texts of request i: consecutive corpus lines, wrapping.
func pick(corpus []string, i, n int) []string {
	out := make([]string, n)
	for k := range out {
		out[k] = corpus[(i*n+k)%len(corpus)]
	}
	return out
}

func newCaller(o options, corpus []string) (caller, func(), error) {
	if o.mode == "grpc" {
		// One connection, as the gateway holds: the core must spread the
		// work of a single HTTP/2 connection over all of its workers.
		conn, err := grpc.NewClient("passthrough:///"+o.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, fmt.Errorf("dial %s: %w", o.target, err)
		}
		client := contractv1.NewEmbeddingServiceClient(conn)
		call := func(ctx context.Context, i int) (int, error) {
			ctx, cancel := context.WithTimeout(ctx, o.timeout)
			defer cancel()
			reply, err := client.Embed(ctx, &contractv1.EmbedRequest{Texts: pick(corpus, i, o.texts)})
			if err != nil {
				return 0, err
			}
			return len(reply.GetEmbeddings()), nil
		}
		return call, func() { conn.Close() }, nil
	}
	transport := &http.Transport{MaxIdleConns: o.concurrency, MaxIdleConnsPerHost: o.concurrency}
	client := &http.Client{Transport: transport, Timeout: o.timeout}
	url := strings.TrimRight(o.target, "/") + o.path
	call := func(ctx context.Context, i int) (int, error) {
		texts := pick(corpus, i, o.texts)
		var body any = map[string]any{"texts": texts}
		if o.openAI {
			body = map[string]any{"model": "all-MiniLM-L6-v2", "input": texts}
		}
		payload, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, httpStatusError(resp.StatusCode)
		}
		return len(texts), nil
	}
	return call, transport.CloseIdleConnections, nil
}

type httpStatusError int

func (e httpStatusError) Error() string { return fmt.Sprintf("http_%d", int(e)) }

// generate runs the load and measures it.
func generate(ctx context.Context, o options, call caller) Report {
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, o.requests)
		errs      = map[string]int{}
		texts     int
		next      atomic.Int64
	)
	record := func(i int) {
		start := time.Now()
		n, err := call(ctx, i)
		elapsed := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs[errorKind(err)]++
			return
		}
		latencies = append(latencies, elapsed)
		texts += n
	}

	cpuBefore := cpuSeconds()
	start := time.Now()
	deadline := start.Add(o.duration)
	var wg sync.WaitGroup
	if o.rate <= 0 {
		for range o.concurrency {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= o.requests || time.Now().After(deadline) {
						return
					}
					record(i)
				}
			})
		}
	} else {
		slots := make(chan struct{}, o.concurrency)
		interval := time.Duration(float64(time.Second) / o.rate)
		for i := 0; i < o.requests; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.After(deadline) {
				break
			}
			time.Sleep(time.Until(due))
			select {
			case slots <- struct{}{}:
			default:
				mu.Lock()
				errs["client_outstanding_cap"]++
				mu.Unlock()
				continue
			}
			wg.Go(func() {
				defer func() { <-slots }()
				record(i)
			})
		}
	}
	wg.Wait()
	wall := time.Since(start).Seconds()

	slices.Sort(latencies)
	return Report{
		Requests:         len(latencies),
		Texts:            texts,
		Errors:           errs,
		WallSeconds:      wall,
		TextsPerSecond:   float64(texts) / wall,
		RequestsPerSec:   float64(len(latencies)) / wall,
		ClientCPUSeconds: cpuSeconds() - cpuBefore,
		LatencyMs: Percentiles{
			P50: percentileMs(latencies, 0.50),
			P90: percentileMs(latencies, 0.90),
			P99: percentileMs(latencies, 0.99),
			Max: percentileMs(latencies, 1.00),
		},
	}
}

func errorKind(err error) string {
	if s, ok := status.FromError(err); ok && s.Code() != 0 {
		return "grpc_" + s.Code().String()
	}
	var httpErr httpStatusError
	if errors.As(err, &httpErr) {
		return httpErr.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "transport"
}

// percentileMs is the nearest-rank percentile of sorted durations.
func percentileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.5) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return float64(sorted[rank].Microseconds()) / 1000
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}
