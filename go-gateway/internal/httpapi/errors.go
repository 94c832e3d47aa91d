package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// This file is the one place where errors become HTTP responses: handlers
// return or pass errors here, and toAPIError decides status, type, code and
// the message the client may see. docs/gateway.md documents the table.

// Error types, as in OpenAI's API.
const (
	typeInvalidRequest = "invalid_request_error"
	typeRateLimit      = "rate_limit_error"
	typeServer         = "server_error"
)

// Error codes. They are stable API: clients may switch on them. Each is also
// the "outcome" label of tandem_gateway_http_requests_total.
const (
	codeInvalidJSON           = "invalid_json"
	codeUnknownParameter      = "unknown_parameter"
	codeMissingParameter      = "missing_required_parameter"
	codeInvalidType           = "invalid_type"
	codeInvalidValue          = "invalid_value"
	codeUnsupportedInput      = "unsupported_input"
	codeTooManyInputs         = "too_many_inputs"
	codeInputTooLarge         = "input_too_large"
	codeContextLengthExceeded = "context_length_exceeded"
	codeInvalidAPIKey         = "invalid_api_key"
	codeModelNotFound         = "model_not_found"
	codeNotFound              = "not_found"
	codeMethodNotAllowed      = "method_not_allowed"
	codeRequestTooLarge       = "request_too_large"
	codeUnsupportedMediaType  = "unsupported_media_type"
	codeRateLimitExceeded     = "rate_limit_exceeded"
	codeTooManyInFlight       = "too_many_concurrent_requests"
	codeUpstreamOverloaded    = "upstream_overloaded"
	codeClientClosedRequest   = "client_closed_request"
	codeInternal              = "internal_error"
	codeUpstreamError         = "upstream_error"
	codeUpstreamUnavailable   = "upstream_unavailable"
	codeUpstreamTimeout       = "upstream_timeout"
)

// statusClientClosedRequest is nginx's status for a client that went away
// before the answer. Nobody reads it; it keeps such requests apart from
// server errors in logs and metrics.
const statusClientClosedRequest = 499

// apiError is an error answered to the client in OpenAI's error shape.
type apiError struct {
	Status  int
	Type    string
	Code    string
	Param   string // empty means null
	Message string // shown to the client: never internal details
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
	// cause is the underlying error, for the log.
	cause error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return e.Code + ": " + e.Message
}

func (e *apiError) Unwrap() error { return e.cause }

// The errors the gateway raises itself. Keeping their constructors here puts
// every status, type and code the API can answer with in this one file.

// invalidRequest returns a 400 for a problem with the request's content.
func invalidRequest(code, param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

func errUnreadableBody(cause error) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: codeInvalidJSON,
		Message: "could not read the request body", cause: cause}
}

func errUnsupportedMediaType() *apiError {
	return &apiError{Status: http.StatusUnsupportedMediaType, Type: typeInvalidRequest, Code: codeUnsupportedMediaType,
		Message: "the request body must be JSON, sent with Content-Type: application/json"}
}

func errModelNotFound(model string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: codeModelNotFound, Param: "model",
		Message: fmt.Sprintf("the model %q does not exist; GET /v1/models lists the served model", echo(model))}
}

func errMissingAPIKey() *apiError {
	return &apiError{Status: http.StatusUnauthorized, Type: typeInvalidRequest, Code: codeInvalidAPIKey,
		Message: "missing API key; send it as Authorization: Bearer <key>"}
}

func errInvalidAPIKey() *apiError {
	return &apiError{Status: http.StatusUnauthorized, Type: typeInvalidRequest, Code: codeInvalidAPIKey,
		Message: "incorrect API key provided"}
}

func errRateLimited(retryAfter time.Duration) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: codeRateLimitExceeded,
		Message: "rate limit exceeded; retry after the delay in Retry-After", RetryAfter: retryAfter}
}

func errTooManyInFlight() *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: codeTooManyInFlight,
		Message: "the gateway is handling too many requests; retry shortly", RetryAfter: time.Second}
}

func errMethodNotAllowed(method, path, allowed string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalidRequest, Code: codeMethodNotAllowed,
		Message: fmt.Sprintf("method %s is not allowed on %s; use %s", echo(method), echo(path), allowed)}
}

func errRouteNotFound(method, path string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: codeNotFound,
		Message: fmt.Sprintf("invalid URL (%s %s)", echo(method), echo(path))}
}

// errMalformedUpstreamAnswer reports a core answer that breaks the contract.
func errMalformedUpstreamAnswer(cause error) *apiError {
	return &apiError{Status: http.StatusBadGateway, Type: typeServer, Code: codeUpstreamError,
		Message: "the inference backend returned a malformed answer; the request id identifies it in the gateway's logs", cause: cause}
}

// errInternal reports a gateway bug, such as a recovered panic.
func errInternal(cause error) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Type: typeServer, Code: codeInternal,
		Message: "internal error; the request id identifies it in the gateway's logs", cause: cause}
}

// toAPIError maps any error to the response the client gets.
func toAPIError(err error) *apiError {
	if e, ok := errors.AsType[*apiError](err); ok {
		return e
	}
	if e, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest, Code: codeRequestTooLarge,
			Message: fmt.Sprintf("the request body exceeds the limit of %d bytes", e.Limit), cause: err}
	}
	if e, ok := errors.AsType[*upstream.Error](err); ok {
		return fromUpstream(e)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Type: typeServer, Code: codeUpstreamTimeout,
			Message: "the request took too long to process; try again, perhaps with fewer inputs", cause: err}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: statusClientClosedRequest, Type: typeInvalidRequest, Code: codeClientClosedRequest,
			Message: "the client closed the request", cause: err}
	}
	return errInternal(err)
}

// fromUpstream maps a failed core call: the gRPC status code decides the
// HTTP status. Only BadRequest field descriptions, which the core writes
// for end users, are passed on; status messages go to the log.
func fromUpstream(e *upstream.Error) *apiError {
	switch e.Code {
	case codes.InvalidArgument:
		return fromInvalidArgument(e)
	case codes.NotFound:
		return &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: codeModelNotFound, Param: "model",
			Message: "the requested model is not served here", cause: e}
	case codes.ResourceExhausted:
		if !e.Overloaded() {
			// The gateway refused to send a message over its send limit
			// (upstream.MessageTooLargeError): deterministic, so 413, not a
			// retryable 429. The limits are derived from the request limits
			// (upstream.MessageLimitsFor), so only a request near every
			// limit at once, or a huge model name, gets here. Any
			// RESOURCE_EXHAUSTED from the wire is overload: 429 below.
			return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest, Code: codeRequestTooLarge,
				Message: "the request is too large for the inference backend; send fewer or shorter inputs", cause: e}
		}
		return &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: codeUpstreamOverloaded,
			Message:    "the inference backend is at capacity; retry after the delay in Retry-After",
			RetryAfter: max(e.RetryDelay, time.Second), cause: e}
	case codes.DeadlineExceeded:
		return &apiError{Status: http.StatusGatewayTimeout, Type: typeServer, Code: codeUpstreamTimeout,
			Message: "the inference backend did not answer in time; try again, perhaps with fewer inputs", cause: e}
	case codes.Unavailable:
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: codeUpstreamUnavailable,
			Message: "the inference backend is unavailable; retry shortly", RetryAfter: e.RetryDelay, cause: e}
	case codes.Canceled:
		return &apiError{Status: statusClientClosedRequest, Type: typeInvalidRequest, Code: codeClientClosedRequest,
			Message: "the client closed the request", cause: e}
	default:
		return &apiError{Status: http.StatusBadGateway, Type: typeServer, Code: codeUpstreamError,
			Message: "the inference backend failed; the request id identifies it in the gateway's logs", cause: e}
	}
}

func fromInvalidArgument(e *upstream.Error) *apiError {
	if len(e.Violations) == 0 {
		ae := invalidRequest(codeInvalidValue, "", "the inference backend rejected the request as invalid")
		ae.cause = e
		return ae
	}
	v := e.Violations[0]
	param := coreFieldToParam(v.Field)
	code, ok := coreReasonCodes[e.Reason]
	if !ok {
		code = codeInvalidValue
		if strings.HasPrefix(param, "input[") && mentionsTokens(v) {
			code = codeContextLengthExceeded
		}
	}
	msg := coreTextIndex.ReplaceAllString(v.Description, "input[$1]")
	if msg == "" {
		msg = "invalid value"
	}
	ae := invalidRequest(code, param, "%s", msg)
	ae.cause = e
	return ae
}

// coreReasonCodes translates the core's stable error codes (the reason of
// its google.rpc.ErrorInfo detail) into this API's codes where they differ
// in meaning from a plain invalid value.
var coreReasonCodes = map[string]string{
	"context_length_exceeded": codeContextLengthExceeded,
	"text_too_large":          codeInputTooLarge,
	"too_many_texts":          codeTooManyInputs,
}

// mentionsTokens recognises a rejection for too many tokens from a core that
// sends no ErrorInfo reason: the gateway already rejects empty and oversized
// texts itself, so a per-text violation that talks about tokens is the
// context length.
func mentionsTokens(v upstream.FieldViolation) bool {
	s := strings.ToLower(v.Reason + " " + v.Description)
	return strings.Contains(s, "token") || strings.Contains(s, "context_length") || strings.Contains(s, "context length")
}

var (
	coreTextField = regexp.MustCompile(`^texts\[(\d+)\]$`)
	coreTextIndex = regexp.MustCompile(`\btexts\[(\d+)\]`)
)

// coreFieldToParam translates a field of EmbedRequest into the OpenAI
// request parameter it came from: texts[3] is input[3]. The same is done to
// the core's descriptions, so message and param agree.
func coreFieldToParam(field string) string {
	if m := coreTextField.FindStringSubmatch(field); m != nil {
		return "input[" + m[1] + "]"
	}
	switch field {
	case "texts":
		return "input"
	case "model":
		return "model"
	case "truncation":
		return "truncate"
	default:
		return ""
	}
}

// writeError answers err in OpenAI's error shape, logs what the client must
// not see, and records the outcome for the access log, metrics and trace.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	e := toAPIError(err)
	ctx := r.Context()
	noteOutcome(ctx, e.Code)
	traceError(ctx, e, err)

	switch {
	case e.Status == statusClientClosedRequest:
		logger.DebugContext(ctx, "client went away", "error", err)
	case e.Status >= 500:
		logger.ErrorContext(ctx, "request failed", "status", e.Status, "code", e.Code, "error", err)
	case e.cause != nil:
		logger.InfoContext(ctx, "request rejected", "status", e.Status, "code", e.Code, "error", err)
	}

	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(e.RetryAfter))
	}
	body := errorResponse{Error: errorBody{Message: e.Message, Type: e.Type, Param: nullable(e.Param), Code: nullable(e.Code)}}
	// An errorResponse always marshals.
	_ = writeJSON(w, e.Status, body)
}

// retryAfterSeconds formats d for Retry-After, which takes whole seconds:
// rounded up, and at least 1 so clients do not retry in a tight loop.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// maxEcho bounds client-chosen text (a field name, a model, a path) quoted
// back in an error message, so an error cannot be made arbitrarily large.
const maxEcho = 64

func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return s[:maxEcho] + "..."
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
