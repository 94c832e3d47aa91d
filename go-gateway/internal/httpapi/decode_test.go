package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

var testLimits = InputLimits{MaxInputs: 256, MaxTextBytes: 8192}

func TestDecodeAcceptsValidRequests(t *testing.T) {
	tests := []struct {
		name string
		body string
		want embeddingsRequest
	}{
		{
			"string input",
			`{"model":"m","input":"hello"}`,
			embeddingsRequest{Inputs: []string{"hello"}, InputIsString: true, Model: "m", EncodingFormat: "float", Truncate: true},
		},
		{
			"array input",
			`{"model":"m","input":["a","b"]}`,
			embeddingsRequest{Inputs: []string{"a", "b"}, Model: "m", EncodingFormat: "float", Truncate: true},
		},
		{
			"every field",
			`{"model":"m","input":["a"],"encoding_format":"base64","dimensions":384,"truncate":false,"user":"u-1"}`,
			embeddingsRequest{Inputs: []string{"a"}, Model: "m", EncodingFormat: "base64", Dimensions: 384, Truncate: false},
		},
		{
			"nulls mean absent",
			`{"model":"m","input":"a","encoding_format":null,"dimensions":null,"truncate":null,"user":null}`,
			embeddingsRequest{Inputs: []string{"a"}, InputIsString: true, Model: "m", EncodingFormat: "float", Truncate: true},
		},
		{
			"whitespace everywhere",
			" { \"model\" : \"m\" , \"input\" : [ \"a\" , \"b\" ] } \n\t",
			embeddingsRequest{Inputs: []string{"a", "b"}, Model: "m", EncodingFormat: "float", Truncate: true},
		},
		{
			"text exactly at the byte limit",
			`{"model":"m","input":"` + strings.Repeat("é", 4096) + `"}`,
			embeddingsRequest{Inputs: []string{strings.Repeat("é", 4096)}, InputIsString: true, Model: "m", EncodingFormat: "float", Truncate: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEmbeddingsRequest([]byte(tt.body), testLimits)
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRejectsInvalidRequests(t *testing.T) {
	many := `"x"` + strings.Repeat(`,"x"`, 256)
	tests := []struct {
		name      string
		body      string
		wantCode  string
		wantParam string
	}{
		{"invalid JSON", `{"model":`, codeInvalidJSON, ""},
		{"empty body", ``, codeInvalidJSON, ""},
		{"array body", `[]`, codeInvalidJSON, ""},
		{"null body", `null`, codeInvalidJSON, ""},
		{"string body", `"hi"`, codeInvalidJSON, ""},
		{"trailing garbage", `{"model":"m","input":"a"} x`, codeInvalidJSON, ""},
		{"two objects", `{"model":"m","input":"a"}{"model":"m","input":"a"}`, codeInvalidJSON, ""},
		{"unknown field", `{"model":"m","input":"a","temperature":1}`, codeUnknownParameter, "temperature"},
		{"field names are case sensitive", `{"Model":"m","input":"a"}`, codeUnknownParameter, "Model"},
		{"missing model", `{"input":"a"}`, codeMissingParameter, "model"},
		{"null model", `{"model":null,"input":"a"}`, codeMissingParameter, "model"},
		{"numeric model", `{"model":3,"input":"a"}`, codeInvalidType, "model"},
		{"empty model", `{"model":"","input":"a"}`, codeInvalidValue, "model"},
		{"missing input", `{"model":"m"}`, codeMissingParameter, "input"},
		{"empty input list", `{"model":"m","input":[]}`, codeInvalidValue, "input"},
		{"empty string", `{"model":"m","input":""}`, codeInvalidValue, "input"},
		{"empty string in list", `{"model":"m","input":["a",""]}`, codeInvalidValue, "input[1]"},
		{"token ids", `{"model":"m","input":[101,2023,102]}`, codeUnsupportedInput, "input"},
		{"lists of token ids", `{"model":"m","input":[[101,102],[101]]}`, codeUnsupportedInput, "input[0]"},
		{"number among strings", `{"model":"m","input":["a",5]}`, codeInvalidType, "input[1]"},
		{"boolean item", `{"model":"m","input":[true]}`, codeInvalidType, "input[0]"},
		{"null item", `{"model":"m","input":["a",null]}`, codeInvalidType, "input[1]"},
		{"object item", `{"model":"m","input":[{"text":"a"}]}`, codeInvalidType, "input[0]"},
		{"object input", `{"model":"m","input":{"text":"a"}}`, codeInvalidType, "input"},
		{"number input", `{"model":"m","input":42}`, codeInvalidType, "input"},
		{"too many items", `{"model":"m","input":[` + many + `]}`, codeTooManyInputs, "input"},
		{"text over the byte limit", `{"model":"m","input":"` + strings.Repeat("a", 8193) + `"}`, codeInputTooLarge, "input"},
		{"item over the byte limit", `{"model":"m","input":["a","` + strings.Repeat("é", 4097) + `"]}`, codeInputTooLarge, "input[1]"},
		{"bad encoding_format", `{"model":"m","input":"a","encoding_format":"base65"}`, codeInvalidValue, "encoding_format"},
		{"numeric encoding_format", `{"model":"m","input":"a","encoding_format":1}`, codeInvalidValue, "encoding_format"},
		{"string dimensions", `{"model":"m","input":"a","dimensions":"384"}`, codeInvalidType, "dimensions"},
		{"fractional dimensions", `{"model":"m","input":"a","dimensions":384.5}`, codeInvalidType, "dimensions"},
		{"zero dimensions", `{"model":"m","input":"a","dimensions":0}`, codeInvalidValue, "dimensions"},
		{"negative dimensions", `{"model":"m","input":"a","dimensions":-3}`, codeInvalidValue, "dimensions"},
		{"string truncate", `{"model":"m","input":"a","truncate":"yes"}`, codeInvalidType, "truncate"},
		{"numeric user", `{"model":"m","input":"a","user":5}`, codeInvalidType, "user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEmbeddingsRequest([]byte(tt.body), testLimits)
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *apiError", err)
			}
			if ae.Status != http.StatusBadRequest || ae.Code != tt.wantCode || ae.Param != tt.wantParam {
				t.Errorf("got %d %s param %q, want 400 %s param %q (%s)", ae.Status, ae.Code, ae.Param, tt.wantCode, tt.wantParam, ae.Message)
			}
			if ae.Message == "" || ae.Type != typeInvalidRequest {
				t.Errorf("error without message or with type %q", ae.Type)
			}
		})
	}
}

func TestUnknownFieldNameIsBoundedInTheError(t *testing.T) {
	name := strings.Repeat("z", 10_000)
	_, err := decodeEmbeddingsRequest([]byte(fmt.Sprintf(`{"model":"m","input":"a",%q:1}`, name)), testLimits)
	var ae *apiError
	if !errors.As(err, &ae) || len(ae.Message) > 200 || len(ae.Param) > 100 {
		t.Errorf("error echoes %d bytes of a client-chosen name", len(ae.Message))
	}
}

func TestCheckAgainstModel(t *testing.T) {
	info := upstream.ModelInfo{ID: "org/model", Aliases: []string{"model"}, Dimension: 384, MaxTextsPerRequest: 2, MaxTextBytes: 5}
	base := embeddingsRequest{Inputs: []string{"a"}, Model: "org/model", EncodingFormat: "float", Truncate: true}
	with := func(f func(*embeddingsRequest)) embeddingsRequest {
		r := base
		f(&r)
		return r
	}
	tests := []struct {
		name       string
		req        embeddingsRequest
		wantStatus int
		wantCode   string
		wantParam  string
	}{
		{"canonical id", base, 0, "", ""},
		{"alias", with(func(r *embeddingsRequest) { r.Model = "model" }), 0, "", ""},
		{"matching dimensions", with(func(r *embeddingsRequest) { r.Dimensions = 384 }), 0, "", ""},
		{"unknown model", with(func(r *embeddingsRequest) { r.Model = "text-embedding-3-small" }), 404, codeModelNotFound, "model"},
		{"other dimensions", with(func(r *embeddingsRequest) { r.Dimensions = 256 }), 400, codeInvalidValue, "dimensions"},
		{"over the core's item limit", with(func(r *embeddingsRequest) { r.Inputs = []string{"a", "b", "c"} }), 400, codeTooManyInputs, "input"},
		{"over the core's byte limit", with(func(r *embeddingsRequest) { r.Inputs = []string{"a", "bbbbbb"} }), 400, codeInputTooLarge, "input[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.checkAgainstModel(info, testLimits)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != tt.wantStatus || ae.Code != tt.wantCode || ae.Param != tt.wantParam {
				t.Errorf("err = %v, want %d %s param %q", err, tt.wantStatus, tt.wantCode, tt.wantParam)
			}
		})
	}
}
