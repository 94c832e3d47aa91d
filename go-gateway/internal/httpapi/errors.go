package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
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

// fromUpstream maps a failed core call. The contract's ErrorReason decides
// the answer (reasonAnswers); an error without one (a transport failure, a
// proxy, gRPC's own limits, or a refusal by the gateway itself) is answered
// by its Kind (kindAnswers). Only BadRequest field descriptions, which the
// core writes for end users, are passed on; status messages go to the log.
func fromUpstream(e *upstream.Error) *apiError {
	a, ok := reasonAnswers[e.Reason]
	if !ok {
		a = kindAnswers[e.Kind]
	}
	ae := &apiError{Status: a.status, Type: a.typ, Code: a.code, Param: a.param, Message: a.message, cause: e}
	switch a.status {
	case http.StatusTooManyRequests:
		ae.RetryAfter = max(e.RetryDelay, time.Second)
	case http.StatusServiceUnavailable:
		ae.RetryAfter = e.RetryDelay
	case http.StatusBadRequest:
		if len(e.Violations) > 0 {
			v := e.Violations[0]
			if param := requestParam(v); param != "" {
				ae.Param = param
				if v.Description != "" {
					// The contract keeps the field's name out of the
					// description, so the API's own name goes in front:
					// "input[3] is empty".
					ae.Message = param + " " + v.Description
				}
			}
		}
	}
	return ae
}

// answer is the HTTP side of a failed core call; message is what the client
// reads when the core's field violation does not say more.
type answer struct {
	status  int
	typ     string
	code    string
	param   string
	message string
}

var (
	answerInvalid = answer{http.StatusBadRequest, typeInvalidRequest, codeInvalidValue, "",
		"the inference backend rejected the request as invalid"}
	answerModelNotFound = answer{http.StatusNotFound, typeInvalidRequest, codeModelNotFound, "model",
		"the requested model is not served here"}
	answerOverloaded = answer{http.StatusTooManyRequests, typeRateLimit, codeUpstreamOverloaded, "",
		"the inference backend is at capacity; retry after the delay in Retry-After"}
	answerTimeout = answer{http.StatusGatewayTimeout, typeServer, codeUpstreamTimeout, "",
		"the inference backend did not answer in time; try again, perhaps with fewer inputs"}
	answerUnavailable = answer{http.StatusServiceUnavailable, typeServer, codeUpstreamUnavailable, "",
		"the inference backend is unavailable; retry shortly"}
	answerFailed = answer{http.StatusBadGateway, typeServer, codeUpstreamError, "",
		"the inference backend failed; the request id identifies it in the gateway's logs"}
)

// reasonAnswers maps every ErrorReason of the contract to the HTTP answer
// (embedding.proto documents each value with this status). A reason missing
// here is a test failure (TestEveryErrorReasonHasAnHTTPAnswer).
var reasonAnswers = map[contractv1.ErrorReason]answer{
	contractv1.ErrorReason_ERROR_REASON_INVALID_INPUT: answerInvalid,
	contractv1.ErrorReason_ERROR_REASON_TOO_MANY_TEXTS: {http.StatusBadRequest, typeInvalidRequest, codeTooManyInputs, "input",
		"the request has more inputs than the inference backend accepts"},
	contractv1.ErrorReason_ERROR_REASON_TEXT_TOO_LARGE: {http.StatusBadRequest, typeInvalidRequest, codeInputTooLarge, "",
		"an input is larger than the inference backend accepts"},
	contractv1.ErrorReason_ERROR_REASON_CONTEXT_LENGTH_EXCEEDED: {http.StatusBadRequest, typeInvalidRequest, codeContextLengthExceeded, "",
		"an input has more tokens than the model accepts"},
	contractv1.ErrorReason_ERROR_REASON_INVALID_UTF8:      answerInvalid,
	contractv1.ErrorReason_ERROR_REASON_INVALID_MESSAGE:   answerInvalid,
	contractv1.ErrorReason_ERROR_REASON_MODEL_NOT_FOUND:   answerModelNotFound,
	contractv1.ErrorReason_ERROR_REASON_OVERLOADED:        answerOverloaded,
	contractv1.ErrorReason_ERROR_REASON_DEADLINE_EXCEEDED: answerTimeout,
	contractv1.ErrorReason_ERROR_REASON_UNAVAILABLE:       answerUnavailable,
	contractv1.ErrorReason_ERROR_REASON_INTERNAL_ERROR:    answerFailed,
	contractv1.ErrorReason_ERROR_REASON_NON_FINITE_OUTPUT: answerFailed,
	// Reasons of the core's own HTTP API, never sent over gRPC: receiving
	// one means the core broke the contract.
	contractv1.ErrorReason_ERROR_REASON_INVALID_JSON:           answerFailed,
	contractv1.ErrorReason_ERROR_REASON_BODY_TOO_LARGE:         answerFailed,
	contractv1.ErrorReason_ERROR_REASON_UNSUPPORTED_MEDIA_TYPE: answerFailed,
	contractv1.ErrorReason_ERROR_REASON_BODY_TIMEOUT:           answerFailed,
	contractv1.ErrorReason_ERROR_REASON_NOT_FOUND:              answerFailed,
	contractv1.ErrorReason_ERROR_REASON_METHOD_NOT_ALLOWED:     answerFailed,
	contractv1.ErrorReason_ERROR_REASON_HTTP_ERROR:             answerFailed,
}

// kindAnswers answers a failed call that carries no reason.
var kindAnswers = map[upstream.Kind]answer{
	upstream.KindInvalid:    answerInvalid,
	upstream.KindNotFound:   answerModelNotFound,
	upstream.KindOverloaded: answerOverloaded,
	// The gateway refused to send a message over its send limit
	// (upstream.MessageTooLargeError): deterministic, so 413, not a retryable
	// 429. The limits are derived from the request limits
	// (upstream.MessageLimitsFor), so only a request near every limit at
	// once, or a huge model name, gets here.
	upstream.KindTooLarge: {http.StatusRequestEntityTooLarge, typeInvalidRequest, codeRequestTooLarge, "",
		"the request is too large for the inference backend; send fewer or shorter inputs"},
	upstream.KindDeadlineExceeded: answerTimeout,
	upstream.KindUnavailable:      answerUnavailable,
	upstream.KindCanceled:         {statusClientClosedRequest, typeInvalidRequest, codeClientClosedRequest, "", "the client closed the request"},
	upstream.KindInternal:         answerFailed,
}

// requestParams maps each EmbedRequest field (embedding.proto's names) to the
// OpenAI request parameter it is made from; the one table of its kind. A
// field the API does not expose maps to "" (no param).
var requestParams = map[string]string{
	"texts":      "input",
	"model":      "model",
	"truncation": "truncate",
	"normalize":  "", // the API has no such parameter; the gateway never sets it
}

// requestParam names the violated field as the client sent it: texts[3] is
// input[3]. Empty for a field the API does not expose.
func requestParam(v upstream.FieldViolation) string {
	param := requestParams[v.Field]
	if param == "" || v.Index < 0 {
		return param
	}
	return param + "[" + strconv.Itoa(v.Index) + "]"
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
