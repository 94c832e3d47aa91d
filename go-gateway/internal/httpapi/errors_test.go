package httpapi

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

func TestUpstreamErrorMapping(t *testing.T) {
	const (
		reasonNone            = contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED
		reasonInvalid         = contractv1.ErrorReason_ERROR_REASON_INVALID_INPUT
		reasonContextLength   = contractv1.ErrorReason_ERROR_REASON_CONTEXT_LENGTH_EXCEEDED
		reasonTextTooLarge    = contractv1.ErrorReason_ERROR_REASON_TEXT_TOO_LARGE
		reasonTooManyTexts    = contractv1.ErrorReason_ERROR_REASON_TOO_MANY_TEXTS
		reasonModelNotFound   = contractv1.ErrorReason_ERROR_REASON_MODEL_NOT_FOUND
		reasonOverloaded      = contractv1.ErrorReason_ERROR_REASON_OVERLOADED
		reasonNonFiniteOutput = contractv1.ErrorReason_ERROR_REASON_NON_FINITE_OUTPUT
		reasonHTTPOnly        = contractv1.ErrorReason_ERROR_REASON_BODY_TIMEOUT
	)
	violation := func(field string, index int, description string) []upstream.FieldViolation {
		return []upstream.FieldViolation{{Field: field, Index: index, Description: description}}
	}
	tests := []struct {
		name           string
		err            *upstream.Error
		wantStatus     int
		wantCode       string
		wantParam      string
		wantRetryAfter time.Duration
	}{
		{"invalid input on a text", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonInvalid,
			Violations: violation("texts", 3, "is empty")}, 400, codeInvalidValue, "input[3]", 0},
		{"context length by reason", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonContextLength,
			Violations: violation("texts", 5, "has 300 tokens")}, 400, codeContextLengthExceeded, "input[5]", 0},
		{"text too large by reason", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonTextTooLarge,
			Violations: violation("texts", 1, "is 9000 bytes")}, 400, codeInputTooLarge, "input[1]", 0},
		{"too many texts by reason", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonTooManyTexts,
			Violations: violation("texts", -1, "has 300 items")}, 400, codeTooManyInputs, "input", 0},
		{"too many texts without a violation", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonTooManyTexts},
			400, codeTooManyInputs, "input", 0},
		// Without a reason (an older core, a proxy): the kind decides.
		{"invalid texts list without a reason", &upstream.Error{Kind: upstream.KindInvalid,
			Violations: violation("texts", -1, "is too long")}, 400, codeInvalidValue, "input", 0},
		{"invalid model field", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonInvalid,
			Violations: violation("model", -1, "is bad")}, 400, codeInvalidValue, "model", 0},
		{"truncation field", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonInvalid,
			Violations: violation("truncation", -1, "is unknown")}, 400, codeInvalidValue, "truncate", 0},
		{"a field the API does not expose", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonInvalid,
			Violations: violation("normalize", -1, "is odd")}, 400, codeInvalidValue, "", 0},
		{"a violation that names no field", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonInvalid,
			Violations: violation("", -1, "secret")}, 400, codeInvalidValue, "", 0},
		{"invalid argument without details", &upstream.Error{Kind: upstream.KindInvalid}, 400, codeInvalidValue, "", 0},
		{"not found by reason", &upstream.Error{Kind: upstream.KindNotFound, Reason: reasonModelNotFound,
			Violations: violation("model", -1, "'x' is not served here")}, 404, codeModelNotFound, "model", 0},
		{"not found without a reason", &upstream.Error{Kind: upstream.KindNotFound}, 404, codeModelNotFound, "model", 0},
		{"overloaded with retry info", &upstream.Error{Kind: upstream.KindOverloaded, Reason: reasonOverloaded, RetryDelay: 2500 * time.Millisecond},
			429, codeUpstreamOverloaded, "", 2500 * time.Millisecond},
		{"overloaded without retry info", &upstream.Error{Kind: upstream.KindOverloaded, Reason: reasonOverloaded}, 429, codeUpstreamOverloaded, "", time.Second},
		// Refused by the gateway before sending: deterministic, never a 429.
		{"message too large", &upstream.Error{Kind: upstream.KindTooLarge}, 413, codeRequestTooLarge, "", 0},
		// From the wire without details (grpcio's own limits, a proxy): overload, 429 after 1 s.
		{"resource exhausted without details", &upstream.Error{Kind: upstream.KindOverloaded, Message: "Concurrent RPC limit exceeded!"},
			429, codeUpstreamOverloaded, "", time.Second},
		{"deadline", &upstream.Error{Kind: upstream.KindDeadlineExceeded}, 504, codeUpstreamTimeout, "", 0},
		{"unavailable", &upstream.Error{Kind: upstream.KindUnavailable, RetryDelay: 2 * time.Second}, 503, codeUpstreamUnavailable, "", 2 * time.Second},
		{"canceled", &upstream.Error{Kind: upstream.KindCanceled}, 499, codeClientClosedRequest, "", 0},
		{"internal", &upstream.Error{Kind: upstream.KindInternal, Message: "secret stack trace"}, 502, codeUpstreamError, "", 0},
		{"non-finite output", &upstream.Error{Kind: upstream.KindInternal, Reason: reasonNonFiniteOutput, Message: "secret"}, 502, codeUpstreamError, "", 0},
		// A reason of the core's HTTP API only, over gRPC: the contract is broken.
		{"an HTTP-only reason", &upstream.Error{Kind: upstream.KindInvalid, Reason: reasonHTTPOnly}, 502, codeUpstreamError, "", 0},
		{"no reason, internal kind", &upstream.Error{Kind: upstream.KindInternal, Reason: reasonNone}, 502, codeUpstreamError, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Handlers wrap errors; the mapping must see through that.
			ae := toAPIError(fmt.Errorf("embed: %w", tt.err))
			if ae.Status != tt.wantStatus || ae.Code != tt.wantCode || ae.Param != tt.wantParam || ae.RetryAfter != tt.wantRetryAfter {
				t.Errorf("got %d %s param %q retry %v, want %d %s param %q retry %v",
					ae.Status, ae.Code, ae.Param, ae.RetryAfter, tt.wantStatus, tt.wantCode, tt.wantParam, tt.wantRetryAfter)
			}
			if strings.Contains(ae.Message, "secret") || ae.Message == "" {
				t.Errorf("message %q: empty, or an internal detail leaked to the client", ae.Message)
			}
		})
	}
}

func TestCoreDescriptionsNameTheRequestParameter(t *testing.T) {
	ae := toAPIError(&upstream.Error{Kind: upstream.KindInvalid, Reason: contractv1.ErrorReason_ERROR_REASON_CONTEXT_LENGTH_EXCEEDED,
		Violations: []upstream.FieldViolation{{Field: "texts", Index: 12, Description: "has 300 tokens; the maximum is 256"}}})
	if ae.Message != "input[12] has 300 tokens; the maximum is 256" {
		t.Errorf("message = %q, want the core's description in the API's terms", ae.Message)
	}
}

// Every value of the contract's ErrorReason, read from the generated code,
// has an HTTP answer: a reason added to embedding.proto fails here until the
// gateway knows what to answer.
func TestEveryErrorReasonHasAnHTTPAnswer(t *testing.T) {
	for number, name := range contractv1.ErrorReason_name {
		reason := contractv1.ErrorReason(number)
		a, ok := reasonAnswers[reason]
		if reason == contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			if ok {
				t.Errorf("%s has an answer; errors without a reason are answered by their kind", name)
			}
			continue
		}
		if !ok || a.status < 400 || a.typ == "" || a.code == "" || a.message == "" {
			t.Errorf("%s: answer %+v, want a complete HTTP answer", name, a)
		}
	}
	if len(reasonAnswers) != len(contractv1.ErrorReason_name)-1 {
		t.Errorf("%d answers for %d reasons: one answers a value the contract does not have", len(reasonAnswers), len(contractv1.ErrorReason_name)-1)
	}
}

func TestEveryKindHasAnHTTPAnswer(t *testing.T) {
	for _, kind := range upstream.Kinds() {
		if a, ok := kindAnswers[kind]; !ok || a.status < 400 || a.code == "" || a.message == "" {
			t.Errorf("kind %s: answer %+v, want a complete HTTP answer", kind, a)
		}
	}
}

// The field table covers exactly the fields of EmbedRequest, by the names
// the generated descriptor gives.
func TestRequestParamsCoverEmbedRequestFields(t *testing.T) {
	fields := (&contractv1.EmbedRequest{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		if _, ok := requestParams[name]; !ok {
			t.Errorf("EmbedRequest.%s has no entry in requestParams", name)
		}
	}
	for name := range requestParams {
		if fields.ByName(protoreflect.Name(name)) == nil {
			t.Errorf("requestParams maps %q, which is not a field of EmbedRequest", name)
		}
	}
}

func TestRequestParam(t *testing.T) {
	tests := []struct {
		v    upstream.FieldViolation
		want string
	}{
		{upstream.FieldViolation{Field: "texts", Index: 0}, "input[0]"},
		{upstream.FieldViolation{Field: "texts", Index: 255}, "input[255]"},
		{upstream.FieldViolation{Field: "texts", Index: -1}, "input"},
		{upstream.FieldViolation{Field: "model", Index: -1}, "model"},
		{upstream.FieldViolation{Field: "truncation", Index: -1}, "truncate"},
		{upstream.FieldViolation{Field: "normalize", Index: -1}, ""},
		{upstream.FieldViolation{Field: "", Index: -1}, ""},
		{upstream.FieldViolation{Field: "unknown", Index: 2}, ""},
	}
	for _, tt := range tests {
		if got := requestParam(tt.v); got != tt.want {
			t.Errorf("requestParam(%+v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

// The HTTP package maps domain errors; gRPC stays behind the upstream
// package. Transitive imports through upstream are expected; a direct
// import of google.golang.org/grpc here, in code or tests, is not.
func TestHTTPAPIDoesNotImportGRPC(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("no imports found: the check is looking at the wrong directory")
	}
	for _, imports := range [][]string{pkg.Imports, pkg.TestImports, pkg.XTestImports} {
		for _, path := range imports {
			if path == "google.golang.org/grpc" || strings.HasPrefix(path, "google.golang.org/grpc/") {
				t.Errorf("internal/httpapi imports %s; use upstream's domain errors", path)
			}
		}
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
