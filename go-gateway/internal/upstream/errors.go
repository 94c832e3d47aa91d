package upstream

import (
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

// newContractError reports an answer that breaks the inference.proto
// contract, e.g. fewer embeddings than texts.
func newContractError(method, format string, args ...any) *Error {
	return &Error{Method: method, Code: codes.Internal, Message: "contract violation: " + fmt.Sprintf(format, args...)}
}

// Overloaded tells the two kinds of RESOURCE_EXHAUSTED apart. The core's
// admission control sends it with a google.rpc.ErrorInfo reason and a
// RetryInfo (python-inference/src/tandem/grpc_api/errors.py): the core is
// busy, and the same request may succeed later. gRPC's own message size
// check (on either side) sends it with neither: the request is too large and
// will fail the same way every time, so it must not be retried.
func (e *Error) Overloaded() bool {
	return e.Code == codes.ResourceExhausted && (e.Reason != "" || e.RetryDelay > 0)
}
