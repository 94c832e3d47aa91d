package upstream

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed call to the core, reduced to what the HTTP edge needs to
// answer its client. The HTTP mapping lives in the httpapi package; this
// type only carries facts.
type Error struct {
	// Method is the RPC, e.g. "Embed".
	Method string
	// Code is the final gRPC status code.
	Code codes.Code
	// Message is the status message. It may contain internal details, so it
	// is for logs only, never for clients.
	Message string
	// Reason is the core's stable error code from a google.rpc.ErrorInfo
	// detail, e.g. "context_length_exceeded"; empty if it sent none.
	Reason string
	// Violations are the google.rpc.BadRequest field violations of an
	// INVALID_ARGUMENT status. Their descriptions are written for end users.
	Violations []FieldViolation
	// RetryDelay comes from a google.rpc.RetryInfo detail; zero if the core
	// sent none.
	RetryDelay time.Duration
	// TooLarge marks a request the gateway refused to send because its
	// encoded size is over the send limit (MessageTooLargeError). Code is
	// then RESOURCE_EXHAUSTED, as gRPC's own size check would say, but the
	// error is deterministic: the same request fails the same way every time.
	TooLarge bool

	err error
}

// FieldViolation names an invalid request field, e.g. Field "texts[3]".
type FieldViolation struct {
	Field       string
	Description string
	Reason      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("upstream %s: %s: %s", e.Method, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.err }

// MessageTooLargeError is a request message over the send limit
// (MessageLimitsFor), refused by the gateway before anything is sent.
type MessageTooLargeError struct {
	Size  int
	Limit int
}

func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("the request message is %d bytes, over the send limit of %d", e.Size, e.Limit)
}

// newStatusError converts an error returned by a gRPC call.
func newStatusError(method string, err error) *Error {
	if tooLarge, ok := errors.AsType[*MessageTooLargeError](err); ok {
		return &Error{Method: method, Code: codes.ResourceExhausted, Message: tooLarge.Error(), TooLarge: true, err: err}
	}
	st := status.Convert(err)
	e := &Error{Method: method, Code: st.Code(), Message: st.Message(), err: err}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, FieldViolation{
					Field:       v.GetField(),
					Description: v.GetDescription(),
					Reason:      v.GetReason(),
				})
			}
		case *errdetails.RetryInfo:
			e.RetryDelay = d.GetRetryDelay().AsDuration()
		case *errdetails.ErrorInfo:
			e.Reason = d.GetReason()
		}
	}
	return e
}

// newContractError reports an answer that breaks the inference.proto
// contract, e.g. fewer embeddings than texts.
func newContractError(method, format string, args ...any) *Error {
	return &Error{Method: method, Code: codes.Internal, Message: "contract violation: " + fmt.Sprintf(format, args...)}
}

// Overloaded reports whether the core (or gRPC on its way) refused the call
// for capacity, so the same request may succeed later. Every
// RESOURCE_EXHAUSTED from the wire is that: the core's admission control
// (with a google.rpc.ErrorInfo reason and a RetryInfo,
// python-inference/src/tandem/grpc_api/errors.py) or a transport limit.
// The deterministic size case never reaches the wire: the gateway knows the
// encoded size of what it sends and refuses an oversized message itself
// (TooLarge, sendLimitInterceptor). The core's receive limit is derived from
// the same request limits, so a message the gateway sends always fits it.
func (e *Error) Overloaded() bool {
	return e.Code == codes.ResourceExhausted && !e.TooLarge
}
