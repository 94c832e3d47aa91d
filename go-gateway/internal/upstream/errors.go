package upstream

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tandem-inference/tandem/go-gateway/internal/breaker"
)

// Error is a failed call to the core, reduced to what the HTTP edge needs to
// answer its client. The HTTP mapping lives in the httpapi package; this
// type only carries facts.
type Error struct {
	// Method is the RPC, e.g. "Embed".
	Method string
	// Code is the final gRPC status code. A call rejected by the open
	// circuit breaker has Unavailable.
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
	// RetryDelay comes from a google.rpc.RetryInfo detail, or from the
	// breaker's remaining open time; zero if unknown.
	RetryDelay time.Duration

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

// newStatusError converts an error returned by a gRPC call.
func newStatusError(method string, err error) *Error {
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

// newBreakerError reports a call the open circuit breaker refused. It looks
// like UNAVAILABLE to callers, which is what it means: no backend to ask.
func newBreakerError(method string, err error) *Error {
	e := &Error{Method: method, Code: codes.Unavailable, Message: err.Error(), err: err}
	if open, ok := errors.AsType[*breaker.OpenError](err); ok {
		e.RetryDelay = open.RetryAfter
	}
	return e
}

// newContractError reports an answer that breaks the inference.proto
// contract, e.g. fewer embeddings than texts.
func newContractError(method, format string, args ...any) *Error {
	return &Error{Method: method, Code: codes.Internal, Message: "contract violation: " + fmt.Sprintf(format, args...)}
}

// breakerOutcome classifies a call result for the circuit breaker: only
// signs that the core is down or overwhelmed count as failures.
func breakerOutcome(err error) breaker.Outcome {
	switch status.Code(err) {
	case codes.OK:
		return breaker.Success
	case codes.Unavailable, codes.DeadlineExceeded:
		return breaker.Failure
	case codes.Canceled:
		return breaker.Ignore
	default:
		// The core answered (e.g. INVALID_ARGUMENT): it is alive.
		return breaker.Success
	}
}
