package upstream

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tandem-inference/tandem/go-gateway/internal/config"
)

// MessageLimits are the largest gRPC messages the gateway sends to and
// accepts from the core, in bytes. They are derived from the request limits
// rather than set by hand, so that a valid request can never fail for its
// size and the memory one call may hold is known:
//
//	Send    = min(max-inputs x max-text-bytes, max-body-bytes)
//	          + max-inputs x (tag + length prefix of one text) + messageOverhead
//	Receive = max-inputs x (4 x max-dimension + embeddingOverhead) + messageOverhead
//
// The texts decoded from a JSON body are never longer than the body (an
// escape only shrinks when decoded), hence the min. The chart computes the
// core's receive limit (TANDEM_CORE_MAX_REQUEST_BYTES) with the same formula
// (deploy/helm/tandem/templates/_limits.tpl), so the core accepts whatever
// the gateway may send; docs/gateway.md shows the numbers.
type MessageLimits struct {
	Send    int
	Receive int
}

const (
	// messageOverhead covers the fields of a request or response other than
	// the texts or vectors: the model id, the options, the token total.
	messageOverhead = 1 << 10
	// embeddingOverhead is the framing of one Embedding message: its own tag
	// and length, the packed values' tag and length, token_count and
	// truncated; 16 bytes bound them for any dimension up to 2^19.
	embeddingOverhead = 16
)

// MessageLimitsFor derives the message limits from the request limits and
// the largest embedding dimension the gateway accepts from a core.
func MessageLimitsFor(l config.Limits, maxDimension int) MessageLimits {
	// One text in EmbedRequest.texts: field tag (1 byte) + varint length.
	perText := 1 + protowire.SizeVarint(uint64(l.MaxTextBytes))
	texts := min(int64(l.MaxInputs)*int64(l.MaxTextBytes), l.MaxBodyBytes)
	return MessageLimits{
		Send:    int(texts) + l.MaxInputs*perText + messageOverhead,
		Receive: l.MaxInputs*(4*maxDimension+embeddingOverhead) + messageOverhead,
	}
}

// sendLimitInterceptor refuses a request whose encoded size is over limit
// before it is sent, with a MessageTooLargeError (413 at the HTTP edge).
// grpc-go's MaxCallSendMsgSize checks the same size, but answers
// RESOURCE_EXHAUSTED like an overloaded core does; checking here first keeps
// the deterministic case apart from overload, whose RESOURCE_EXHAUSTED is
// retryable (Error.Overloaded). proto.Size is what the codec will encode.
func sendLimitInterceptor(limit int) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if m, ok := req.(proto.Message); ok {
			if size := proto.Size(m); size > limit {
				return &MessageTooLargeError{Size: size, Limit: limit}
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
