package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

func TestUpstreamStatusMapping(t *testing.T) {
	tests := []struct {
		name           string
		err            *upstream.Error
		wantStatus     int
		wantCode       string
		wantParam      string
		wantRetryAfter time.Duration
	}{
		{"invalid argument on a text", &upstream.Error{Code: codes.InvalidArgument,
			Violations: []upstream.FieldViolation{{Field: "texts[3]", Description: "text must be valid"}}},
			400, codeInvalidValue, "input[3]", 0},
		{"too many tokens", &upstream.Error{Code: codes.InvalidArgument,
			Violations: []upstream.FieldViolation{{Field: "texts[2]", Description: "text has 300 tokens, more than 256"}}},
			400, codeContextLengthExceeded, "input[2]", 0},
		{"too many tokens by reason", &upstream.Error{Code: codes.InvalidArgument,
			Violations: []upstream.FieldViolation{{Field: "texts[0]", Description: "too long", Reason: "CONTEXT_LENGTH_EXCEEDED"}}},
			400, codeContextLengthExceeded, "input[0]", 0},
		{"context length by ErrorInfo reason", &upstream.Error{Code: codes.InvalidArgument, Reason: "context_length_exceeded",
			Violations: []upstream.FieldViolation{{Field: "texts[5]", Description: "too long and truncation was refused"}}},
			400, codeContextLengthExceeded, "input[5]", 0},
		{"text too large by reason", &upstream.Error{Code: codes.InvalidArgument, Reason: "text_too_large",
			Violations: []upstream.FieldViolation{{Field: "texts[1]", Description: "texts[1] is 9000 bytes"}}},
			400, codeInputTooLarge, "input[1]", 0},
		{"too many texts by reason", &upstream.Error{Code: codes.InvalidArgument, Reason: "too_many_texts",
			Violations: []upstream.FieldViolation{{Field: "texts", Description: "300 texts"}}},
			400, codeTooManyInputs, "input", 0},
		{"invalid texts list", &upstream.Error{Code: codes.InvalidArgument,
			Violations: []upstream.FieldViolation{{Field: "texts", Description: "too many texts"}}},
			400, codeInvalidValue, "input", 0},
		{"invalid model field", &upstream.Error{Code: codes.InvalidArgument,
			Violations: []upstream.FieldViolation{{Field: "model", Description: "bad model"}}},
			400, codeInvalidValue, "model", 0},
		{"invalid argument without details", &upstream.Error{Code: codes.InvalidArgument}, 400, codeInvalidValue, "", 0},
		{"not found", &upstream.Error{Code: codes.NotFound}, 404, codeModelNotFound, "model", 0},
		{"overloaded with retry info", &upstream.Error{Code: codes.ResourceExhausted, RetryDelay: 2500 * time.Millisecond},
			429, codeUpstreamOverloaded, "", 2500 * time.Millisecond},
		{"overloaded without retry info", &upstream.Error{Code: codes.ResourceExhausted, Reason: "overloaded"}, 429, codeUpstreamOverloaded, "", time.Second},
		// Refused by the gateway before sending: deterministic, never a 429.
		{"message too large", &upstream.Error{Code: codes.ResourceExhausted, TooLarge: true},
			413, codeRequestTooLarge, "", 0},
		// From the wire without details (grpcio's own limits, a proxy): overload, 429 after 1 s.
		{"resource exhausted without details", &upstream.Error{Code: codes.ResourceExhausted, Message: "Concurrent RPC limit exceeded!"},
			429, codeUpstreamOverloaded, "", time.Second},
		{"deadline", &upstream.Error{Code: codes.DeadlineExceeded}, 504, codeUpstreamTimeout, "", 0},
		{"unavailable", &upstream.Error{Code: codes.Unavailable}, 503, codeUpstreamUnavailable, "", 0},
		{"canceled", &upstream.Error{Code: codes.Canceled}, 499, codeClientClosedRequest, "", 0},
		{"internal", &upstream.Error{Code: codes.Internal, Message: "secret stack trace"}, 502, codeUpstreamError, "", 0},
		{"unknown", &upstream.Error{Code: codes.Unknown}, 502, codeUpstreamError, "", 0},
		{"unimplemented", &upstream.Error{Code: codes.Unimplemented}, 502, codeUpstreamError, "", 0},
		{"permission denied", &upstream.Error{Code: codes.PermissionDenied}, 502, codeUpstreamError, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Handlers wrap errors; the mapping must see through that.
			ae := toAPIError(fmt.Errorf("embed: %w", tt.err))
			if ae.Status != tt.wantStatus || ae.Code != tt.wantCode || ae.Param != tt.wantParam || ae.RetryAfter != tt.wantRetryAfter {
				t.Errorf("got %d %s param %q retry %v, want %d %s param %q retry %v",
					ae.Status, ae.Code, ae.Param, ae.RetryAfter, tt.wantStatus, tt.wantCode, tt.wantParam, tt.wantRetryAfter)
			}
			if strings.Contains(ae.Message, "secret") {
				t.Errorf("internal status message leaked to the client: %q", ae.Message)
			}
		})
	}
}

func TestCoreDescriptionsNameTheRequestParameter(t *testing.T) {
	ae := toAPIError(&upstream.Error{Code: codes.InvalidArgument, Reason: "context_length_exceeded",
		Violations: []upstream.FieldViolation{{Field: "texts[12]", Description: "texts[12] has 300 tokens; the maximum is 256"}}})
	if ae.Message != "input[12] has 300 tokens; the maximum is 256" {
		t.Errorf("message = %q, want the core's description in the API's terms", ae.Message)
	}
}

func TestOtherErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"body too large", &http.MaxBytesError{Limit: 10}, 413, codeRequestTooLarge},
		{"request budget spent", fmt.Errorf("get model info: %w", context.DeadlineExceeded), 504, codeUpstreamTimeout},
		{"client went away", context.Canceled, 499, codeClientClosedRequest},
		{"anything else", errors.New("boom at 10.0.0.7"), 500, codeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := toAPIError(tt.err)
			if ae.Status != tt.wantStatus || ae.Code != tt.wantCode {
				t.Errorf("got %d %s, want %d %s", ae.Status, ae.Code, tt.wantStatus, tt.wantCode)
			}
			if strings.Contains(ae.Message, "10.0.0.7") {
				t.Errorf("internal detail leaked: %q", ae.Message)
			}
		})
	}
}

func TestCoreFieldToParam(t *testing.T) {
	tests := map[string]string{
		"texts[0]":    "input[0]",
		"texts[255]":  "input[255]",
		"texts":       "input",
		"model":       "model",
		"truncation":  "truncate",
		"texts[x]":    "",
		"texts[1][2]": "",
		"normalize":   "",
		"":            "",
	}
	for field, want := range tests {
		if got := coreFieldToParam(field); got != want {
			t.Errorf("coreFieldToParam(%q) = %q, want %q", field, got, want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := map[time.Duration]string{
		time.Millisecond:        "1",
		time.Second:             "1",
		1500 * time.Millisecond: "2",
		30 * time.Second:        "30",
	}
	for d, want := range tests {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %s, want %s", d, got, want)
		}
	}
}
