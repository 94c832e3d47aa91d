package upstream

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
)

func TestParseField(t *testing.T) {
	tests := []struct {
		path      string
		wantField string
		wantIndex int
	}{
		{"texts[0]", "texts", 0},
		{"texts[255]", "texts", 255},
		{"texts", "texts", -1},
		{"model", "model", -1},
		{"truncation", "truncation", -1},
		// Not a field path of the contract: no field, so no param.
		{"texts[x]", "", -1},
		{"texts[1][2]", "", -1},
		{"texts[-1]", "", -1},
		{"texts[01]", "", -1},
		{"texts[3", "", -1},
		{"texts[]", "", -1},
		{"Texts", "", -1},
		{"texts.value", "", -1},
		{"", "", -1},
	}
	for _, tt := range tests {
		if field, index := parseField(tt.path); field != tt.wantField || index != tt.wantIndex {
			t.Errorf("parseField(%q) = %q, %d; want %q, %d", tt.path, field, index, tt.wantField, tt.wantIndex)
		}
	}
}

func TestReasonIsReadOnlyFromTheCoresDomain(t *testing.T) {
	tests := []struct {
		name string
		info *errdetails.ErrorInfo
		want contractv1.ErrorReason
	}{
		{"the core's reason", &errdetails.ErrorInfo{Reason: "ERROR_REASON_TEXT_TOO_LARGE", Domain: ServiceName},
			contractv1.ErrorReason_ERROR_REASON_TEXT_TOO_LARGE},
		{"another domain", &errdetails.ErrorInfo{Reason: "ERROR_REASON_TEXT_TOO_LARGE", Domain: "proxy.example.com"},
			contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
		{"a reason this build does not know", &errdetails.ErrorInfo{Reason: "ERROR_REASON_FROM_THE_FUTURE", Domain: ServiceName},
			contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
		{"the old lower-case code", &errdetails.ErrorInfo{Reason: "text_too_large", Domain: ServiceName},
			contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := status.New(codes.InvalidArgument, "bad").WithDetails(tt.info)
			if err != nil {
				t.Fatal(err)
			}
			if got := newStatusError("Embed", st.Err()).Reason; got != tt.want {
				t.Errorf("reason = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestEveryStatusCodeHasAKind(t *testing.T) {
	want := map[codes.Code]Kind{
		codes.InvalidArgument:   KindInvalid,
		codes.NotFound:          KindNotFound,
		codes.ResourceExhausted: KindOverloaded,
		codes.DeadlineExceeded:  KindDeadlineExceeded,
		codes.Unavailable:       KindUnavailable,
		codes.Canceled:          KindCanceled,
	}
	for code := codes.OK; code <= codes.Unauthenticated; code++ {
		k, ok := want[code]
		if !ok {
			k = KindInternal
		}
		if got := kindOf(code); got != k {
			t.Errorf("kindOf(%s) = %s, want %s", code, got, k)
		}
	}
}
