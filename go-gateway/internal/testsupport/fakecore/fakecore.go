// Package fakecore is an in-process stand-in for the Python core, for tests
// only: a scriptable EmbeddingService plus the real grpc.health.v1 server,
// listening on 127.0.0.1. Its default behaviour follows embedding.proto
// closely enough for the gateway's tests: deterministic unit vectors, one
// token per word plus two special tokens, truncation or rejection of long
// texts, and the documented error details.
package fakecore

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
)

// The model the fake serves, as the real core describes all-MiniLM-L6-v2.
const (
	ModelID   = "sentence-transformers/all-MiniLM-L6-v2"
	Alias     = "all-MiniLM-L6-v2"
	Dimension = 384
	MaxTokens = 256
)

// ServiceName is the name health is reported under.
var ServiceName = contractv1.EmbeddingService_ServiceDesc.ServiceName

// EmbedFunc handles an Embed call.
type EmbedFunc func(ctx context.Context, req *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error)

// Call is what the fake observed about one Embed call.
type Call struct {
	RequestID string
	// TraceParent and Baggage are the W3C trace context the gateway sent
	// as metadata; empty when it sent none.
	TraceParent string
	Baggage     string
	HasDeadline bool
	// Budget is the time left until the call's deadline when it arrived.
	Budget time.Duration
}

// Core is a running fake core.
type Core struct {
	contractv1.UnimplementedEmbeddingServiceServer

	// Addr is the host:port the fake listens on.
	Addr   string
	Health *health.Server

	server     *grpc.Server
	embedCalls atomic.Int64
	infoCalls  atomic.Int64

	mu        sync.Mutex
	embed     EmbedFunc
	calls     []Call
	precision string
}

// Start runs a fake core on 127.0.0.1 until the test ends. It reports
// SERVING for "" and the embedding service.
func Start(t testing.TB) *Core {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakecore: listen: %v", err)
	}
	c := &Core{Addr: ln.Addr().String(), Health: health.NewServer(), server: grpc.NewServer(), precision: "fp32"}
	contractv1.RegisterEmbeddingServiceServer(c.server, c)
	healthpb.RegisterHealthServer(c.server, c.Health)
	c.SetServing(true)

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.server.Serve(ln)
	}()
	t.Cleanup(func() {
		c.server.Stop()
		<-done
	})
	return c
}

// Stop closes the listener and every connection at once, as a crashed
// process would; calls in flight fail. Idempotent.
func (c *Core) Stop() { c.server.Stop() }

// SetServing flips the health status the gateway watches.
func (c *Core) SetServing(serving bool) {
	s := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		s = healthpb.HealthCheckResponse_SERVING
	}
	c.Health.SetServingStatus("", s)
	c.Health.SetServingStatus(ServiceName, s)
}

// SetEmbed replaces the Embed behaviour; nil restores the default.
func (c *Core) SetEmbed(f EmbedFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.embed = f
}

// SetPrecision makes the fake serve the model of another precision, named
// as the real core names it: ModelID and Alias with "-<precision>" appended
// for anything but fp32 (python-inference, model/manifest.py). Two fakes of
// different precisions are the two pools of a two-model gateway.
func (c *Core) SetPrecision(precision string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.precision = precision
}

// Names returns the model id and alias the fake serves now.
func (c *Core) Names() (id, alias string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return servedNames(c.precision)
}

func servedNames(precision string) (id, alias string) {
	if precision == "fp32" {
		return ModelID, Alias
	}
	return ModelID + "-" + precision, Alias + "-" + precision
}

// EmbedCalls counts Embed calls received (attempts, retries included).
func (c *Core) EmbedCalls() int64 { return c.embedCalls.Load() }

// ModelInfoCalls counts GetModelInfo calls received.
func (c *Core) ModelInfoCalls() int64 { return c.infoCalls.Load() }

// Calls returns what the fake saw of each Embed call so far.
func (c *Core) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// Embed implements contractv1.EmbeddingServiceServer.
func (c *Core) Embed(ctx context.Context, req *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
	c.embedCalls.Add(1)
	var call Call
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		first := func(key string) string {
			if v := md.Get(key); len(v) > 0 {
				return v[0]
			}
			return ""
		}
		call.RequestID = first("x-request-id")
		call.TraceParent = first("traceparent")
		call.Baggage = first("baggage")
	}
	if d, ok := ctx.Deadline(); ok {
		call.HasDeadline, call.Budget = true, time.Until(d)
	}

	c.mu.Lock()
	c.calls = append(c.calls, call)
	f := c.embed
	precision := c.precision
	c.mu.Unlock()

	if f != nil {
		return f(ctx, req)
	}
	if precision == "fp32" {
		return DefaultEmbed(ctx, req)
	}
	// Another precision: its own names, otherwise the default behaviour.
	id, alias := servedNames(precision)
	if m := req.GetModel(); m != "" && m != id && m != alias {
		return nil, withReason(codes.NotFound, contractv1.ErrorReason_ERROR_REASON_MODEL_NOT_FOUND, fmt.Sprintf("model %q is not served", m))
	}
	resp, err := DefaultEmbed(ctx, &contractv1.EmbedRequest{Texts: req.GetTexts(), Truncation: req.GetTruncation()})
	if err != nil {
		return nil, err
	}
	resp.Model = id
	return resp, nil
}

// GetModelInfo implements contractv1.EmbeddingServiceServer.
func (c *Core) GetModelInfo(context.Context, *contractv1.GetModelInfoRequest) (*contractv1.GetModelInfoResponse, error) {
	c.infoCalls.Add(1)
	c.mu.Lock()
	precision := c.precision
	c.mu.Unlock()
	id, alias := servedNames(precision)
	return &contractv1.GetModelInfoResponse{
		ModelId:            id,
		Aliases:            []string{alias},
		Dimension:          Dimension,
		MaxTokens:          MaxTokens,
		MaxTextsPerRequest: 256,
		MaxTextBytes:       8192,
		Precision:          precision,
	}, nil
}

// DefaultEmbed is the fake's normal Embed behaviour.
func DefaultEmbed(ctx context.Context, req *contractv1.EmbedRequest) (*contractv1.EmbedResponse, error) {
	if m := req.GetModel(); m != "" && m != ModelID && m != Alias {
		return nil, withReason(codes.NotFound, contractv1.ErrorReason_ERROR_REASON_MODEL_NOT_FOUND, fmt.Sprintf("model %q is not served", m))
	}
	if len(req.GetTexts()) == 0 {
		return nil, BadRequest(contractv1.ErrorReason_ERROR_REASON_INVALID_INPUT, "texts", "must contain at least one text")
	}
	resp := &contractv1.EmbedResponse{Model: ModelID}
	for i, text := range req.GetTexts() {
		if text == "" {
			return nil, BadRequest(contractv1.ErrorReason_ERROR_REASON_INVALID_INPUT, fmt.Sprintf("texts[%d]", i), "is empty")
		}
		tokens := len(strings.Fields(text)) + 2
		truncated := false
		if tokens > MaxTokens {
			if req.GetTruncation() == contractv1.TruncationPolicy_TRUNCATION_POLICY_REJECT {
				return nil, BadRequest(contractv1.ErrorReason_ERROR_REASON_CONTEXT_LENGTH_EXCEEDED, fmt.Sprintf("texts[%d]", i),
					fmt.Sprintf("has %d tokens; the model's maximum is %d and truncation was refused", tokens, MaxTokens))
			}
			tokens, truncated = MaxTokens, true
		}
		resp.Embeddings = append(resp.Embeddings, &contractv1.Embedding{
			Values:     Vector(text),
			TokenCount: uint32(tokens),
			Truncated:  truncated,
		})
		resp.TotalTokens += uint64(tokens)
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs("server-timing", "queue;dur=0.1, inference;dur=0.2"))
	return resp, nil
}

// Vector is the fake's deterministic unit-length embedding of text.
func Vector(text string) []float32 {
	h := fnv.New64a()
	h.Write([]byte(text))
	seed := h.Sum64()
	v := make([]float32, Dimension)
	var norm float64
	for i := range v {
		// xorshift64: cheap, deterministic, and spreads values over [-1, 1).
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		x := float64(seed>>11)/float64(1<<53)*2 - 1
		v[i] = float32(x)
		norm += x * x
	}
	scale := 1 / math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) * scale)
	}
	return v
}

// errorDomain is the google.rpc.ErrorInfo domain the core sets: its service's name.
var errorDomain = contractv1.EmbeddingService_ServiceDesc.ServiceName

// BadRequest returns INVALID_ARGUMENT as the core reports invalid input: a
// google.rpc.ErrorInfo whose reason is the ErrorReason's name, and a
// google.rpc.BadRequest naming the field (in the proto's names, e.g.
// "texts[3]") with a description that does not repeat it ("is empty").
func BadRequest(reason contractv1.ErrorReason, field, description string) error {
	st, err := status.New(codes.InvalidArgument, field+" "+description).WithDetails(
		&errdetails.ErrorInfo{Reason: reason.String(), Domain: errorDomain},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}}},
	)
	if err != nil {
		panic(err) // only for a detail that cannot be marshalled
	}
	return st.Err()
}

// withReason returns a status with code and message and the core's
// google.rpc.ErrorInfo for reason.
func withReason(code codes.Code, reason contractv1.ErrorReason, message string) error {
	st, err := status.New(code, message).WithDetails(&errdetails.ErrorInfo{Reason: reason.String(), Domain: errorDomain})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// Overloaded returns RESOURCE_EXHAUSTED as the core reports a full queue:
// a google.rpc.ErrorInfo with reason ERROR_REASON_OVERLOADED and a
// google.rpc.RetryInfo.
func Overloaded(retryDelay time.Duration) error {
	st, err := status.New(codes.ResourceExhausted, "queue full").WithDetails(
		&errdetails.ErrorInfo{Reason: contractv1.ErrorReason_ERROR_REASON_OVERLOADED.String(), Domain: errorDomain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)},
	)
	if err != nil {
		panic(err)
	}
	return st.Err()
}
