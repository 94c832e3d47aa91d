// Package fakecollector is an in-process OTLP/gRPC trace receiver for tests,
// listening on 127.0.0.1: the real exporter, configured by the OTEL_*
// variables, sends its spans here, and tests read them back. It also counts
// connections, so a test can show that no exporter connected at all.
package fakecollector

import (
	"context"
	"encoding/hex"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// Span is an exported span, flattened for assertions. Ids are lower-case
// hex, as in traceparent; ParentSpanID is empty for a root span.
type Span struct {
	Name         string
	Kind         tracepb.Span_SpanKind
	TraceID      string
	SpanID       string
	ParentSpanID string
	// Attributes and Resource hold the scalar attributes, formatted as
	// strings (an int 3 is "3").
	Attributes map[string]string
	Resource   map[string]string
}

// Collector is a running fake collector.
type Collector struct {
	collectortracepb.UnimplementedTraceServiceServer

	// Addr is the host:port the collector listens on.
	Addr string

	connections atomic.Int64
	mu          sync.Mutex
	spans       []Span
}

// Start runs a collector until the test ends.
func Start(t testing.TB) *Collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakecollector: listen: %v", err)
	}
	c := &Collector{Addr: ln.Addr().String()}
	server := grpc.NewServer()
	collectortracepb.RegisterTraceServiceServer(server, c)

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = server.Serve(countingListener{Listener: ln, n: &c.connections})
	}()
	t.Cleanup(func() {
		server.Stop()
		<-done
	})
	return c
}

// Endpoint is the value for OTEL_EXPORTER_OTLP_ENDPOINT: the http scheme
// tells the exporter to use plaintext.
func (c *Collector) Endpoint() string { return "http://" + c.Addr }

// Connections counts the connections accepted so far.
func (c *Collector) Connections() int64 { return c.connections.Load() }

// Spans returns the spans received so far, in arrival order.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Export implements the OTLP trace service.
func (c *Collector) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	var received []Span
	for _, rs := range req.GetResourceSpans() {
		resource := scalars(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				received = append(received, Span{
					Name:         s.GetName(),
					Kind:         s.GetKind(),
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Attributes:   scalars(s.GetAttributes()),
					Resource:     resource,
				})
			}
		}
	}
	c.mu.Lock()
	c.spans = append(c.spans, received...)
	c.mu.Unlock()
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

func scalars(attrs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(attrs))
	for _, kv := range attrs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = strconv.FormatBool(v.GetBoolValue())
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = strconv.FormatFloat(v.GetDoubleValue(), 'g', -1, 64)
		}
	}
	return m
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return conn, err
}
