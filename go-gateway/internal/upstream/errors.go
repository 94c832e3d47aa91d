package upstream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
)

// Kind is what went wrong with a call to the core, in the terms a caller acts
// on. It is decided here, once, from the gRPC status, so that callers (the
// HTTP edge) never see gRPC types.
type Kind int

const (
	// KindInternal: the core failed (INTERNAL, UNKNOWN, any status without a
	// better kind) or answered outside the contract.
	KindInternal Kind = iota
	// KindInvalid: the request breaks the contract's rules (INVALID_ARGUMENT).
	KindInvalid
	// KindNotFound: the request names a model the core does not serve (NOT_FOUND).
	KindNotFound
	// KindOverloaded: refused for capacity, so the same request may succeed
	// later (RESOURCE_EXHAUSTED from the wire).
	KindOverloaded
	// KindTooLarge: refused by the gateway before anything was sent, because
	// the encoded request is over the send limit (MessageTooLargeError).
	// Deterministic: the same request fails the same way every time.
	KindTooLarge
	// KindDeadlineExceeded: the call's deadline passed (DEADLINE_EXCEEDED).
	KindDeadlineExceeded
	// KindUnavailable: no backend could take the call, after retries (UNAVAILABLE).
	KindUnavailable
	// KindCanceled: the caller went away (CANCELED).
	KindCanceled
)

// Kinds lists every Kind, so a mapping can be checked for completeness.
func Kinds() []Kind {
	return []Kind{KindInternal, KindInvalid, KindNotFound, KindOverloaded, KindTooLarge,
		KindDeadlineExceeded, KindUnavailable, KindCanceled}
}

func (k Kind) String() string {
	switch k {
	case KindInternal:
		return "internal"
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not_found"
	case KindOverloaded:
		return "overloaded"
	case KindTooLarge:
		return "too_large"
	case KindDeadlineExceeded:
		return "deadline_exceeded"
	case KindUnavailable:
		return "unavailable"
	case KindCanceled:
		return "canceled"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a failed call to the core, reduced to what the HTTP edge needs to
// answer its client: a domain error with no gRPC types. The HTTP mapping
// lives in the httpapi package; this type only carries facts.
type Error struct {
	// Method is the RPC, e.g. "Embed".
	Method string
	// Kind says what went wrong.
	Kind Kind
	// Reason is the core's ErrorReason from its google.rpc.ErrorInfo detail
	// (in the core's domain); ERROR_REASON_UNSPECIFIED if it sent none, or
	// one this gateway does not know (a newer core), or if the error did not
	// come from the core (a transport failure, a proxy, gRPC's own limits).
	Reason contractv1.ErrorReason
	// Violations are the google.rpc.BadRequest field violations, with the
	// field parsed into the EmbedRequest field it names. Their descriptions
	// are written for end users.
	Violations []FieldViolation
	// RetryDelay comes from a google.rpc.RetryInfo detail; zero if the core
	// sent none.
	RetryDelay time.Duration
	// Message is the status message. It may contain internal details, so it
	// is for logs only, never for clients.
	Message string

	code codes.Code // the final gRPC status, for the log line
	err  error
}

// FieldViolation names an invalid request field in the contract's terms:
// Field "texts" with Index 3 is EmbedRequest.texts[3].
type FieldViolation struct {
	// Field is the EmbedRequest field's name in embedding.proto, e.g.
	// "texts" or "model"; empty if the core named something that is not a
	// field name (a contract violation: callers then name no field).
	Field string
	// Index is the element of a repeated field, or -1 for the field itself.
	Index int
	// Description says what is wrong with the field without naming it
	// ("is empty"), as the contract asks.
	Description string
}

func (e *Error) Error() string {
	return fmt.Sprintf("upstream %s: %s (%s, reason %s): %s", e.Method, e.code, e.Kind, e.Reason, e.Message)
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

// kindOf maps a gRPC status code to a Kind. Every RESOURCE_EXHAUSTED from
// the wire is overload: the core's admission control (with an ErrorInfo and
// a RetryInfo, python-inference/src/tandem/grpc_api/errors.py) or a
// transport limit. The deterministic size case never reaches the wire: the
// gateway knows the encoded size of what it sends and refuses an oversized
// message itself (KindTooLarge, sendLimitInterceptor). The core's receive
// limit is derived from the same request limits, so a message the gateway
// sends always fits it.
func kindOf(code codes.Code) Kind {
	switch code {
	case codes.InvalidArgument:
		return KindInvalid
	case codes.NotFound:
		return KindNotFound
	case codes.ResourceExhausted:
		return KindOverloaded
	case codes.DeadlineExceeded:
		return KindDeadlineExceeded
	case codes.Unavailable:
		return KindUnavailable
	case codes.Canceled:
		return KindCanceled
	default:
		return KindInternal
	}
}

// newStatusError converts an error returned by a gRPC call.
func newStatusError(method string, err error) *Error {
	if tooLarge, ok := errors.AsType[*MessageTooLargeError](err); ok {
		return &Error{Method: method, Kind: KindTooLarge, Message: tooLarge.Error(), code: codes.ResourceExhausted, err: err}
	}
	st := status.Convert(err)
	e := &Error{Method: method, Kind: kindOf(st.Code()), Message: st.Message(), code: st.Code(), err: err}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				field, index := parseField(v.GetField())
				e.Violations = append(e.Violations, FieldViolation{Field: field, Index: index, Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			e.RetryDelay = d.GetRetryDelay().AsDuration()
		case *errdetails.ErrorInfo:
			e.Reason = parseReason(d)
		}
	}
	return e
}

// parseReason reads the core's ErrorReason from an ErrorInfo: the enum
// value's name (AIP-193), in the domain of the core's service. A reason from
// another domain (a proxy's) or one this build does not know is no reason.
func parseReason(info *errdetails.ErrorInfo) contractv1.ErrorReason {
	if info.GetDomain() != ServiceName {
		return contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	return contractv1.ErrorReason(contractv1.ErrorReason_value[info.GetReason()])
}

// parseField splits a violation's field path, "texts[3]" or "model", into
// the field's name and the element's index (-1 for none). A path that is not
// one of these two forms is not a field of the contract: "", -1.
func parseField(path string) (string, int) {
	name, rest, indexed := strings.Cut(path, "[")
	if !isFieldName(name) {
		return "", -1
	}
	if !indexed {
		return name, -1
	}
	digits, closed := strings.CutSuffix(rest, "]")
	index, err := strconv.Atoi(digits)
	if !closed || err != nil || index < 0 || strconv.Itoa(index) != digits {
		return "", -1
	}
	return name, index
}

// isFieldName reports whether s is a proto field name: lower_snake_case.
func isFieldName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// newContractError reports an answer that breaks the embedding.proto
// contract, e.g. fewer embeddings than texts.
func newContractError(method, format string, args ...any) *Error {
	return &Error{Method: method, Kind: KindInternal, code: codes.Internal, Message: "contract violation: " + fmt.Sprintf(format, args...)}
}
