package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

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
			err := tt.req.checkAgainstModel(Pool{}, info, testLimits)
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

func TestDecodeRefusesTextThatIsNotUnicode(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantParam string
	}{
		{"invalid bytes in an item", `{"model":"m","input":["a","b","c","abc` + "\xff\xfe" + `"]}`, "input[3]"},
		{"invalid bytes in a string input", `{"model":"m","input":"abc` + "\xff\xfe" + `"}`, "input"},
		{"invalid bytes in model", `{"model":"m` + "\xff" + `","input":"a"}`, "model"},
		{"invalid bytes in user", `{"model":"m","input":"a","user":"` + "\xc3" + `"}`, "user"},
		{"invalid bytes in encoding_format", `{"model":"m","input":"a","encoding_format":"` + "\x80" + `"}`, "encoding_format"},
		{"invalid bytes in a field name", `{"model":"m","input":"a","` + "\xff" + `":1}`, ""},
		{"overlong encoding of '/'", `{"model":"m","input":["` + "\xc0\xaf" + `"]}`, "input[0]"},
		{"overlong encoding of NUL", `{"model":"m","input":["` + "\xe0\x80\x80" + `"]}`, "input[0]"},
		{"surrogate encoded as UTF-8", `{"model":"m","input":["` + "\xed\xa0\x80" + `"]}`, "input[0]"},
		{"code point above U+10FFFF", `{"model":"m","input":["` + "\xf4\x90\x80\x80" + `"]}`, "input[0]"},
		{"truncated sequence", `{"model":"m","input":["a` + "\xe2\x82" + `"]}`, "input[0]"},
		{"lone high surrogate escape", `{"model":"m","input":["a\ud800"]}`, "input[0]"},
		{"lone high surrogate before text", `{"model":"m","input":["\ud800abc"]}`, "input[0]"},
		{"lone low surrogate escape", `{"model":"m","input":["\udc00"]}`, "input[0]"},
		{"high surrogate then another escape", `{"model":"m","input":["\ud800\u0041"]}`, "input[0]"},
		{"two high surrogates", `{"model":"m","input":["\ud800\ud800"]}`, "input[0]"},
		{"reversed pair", `{"model":"m","input":["\ude00\ud83d"]}`, "input[0]"},
		{"lone surrogate in model", `{"model":"\udfff","input":"a"}`, "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEmbeddingsRequest([]byte(tt.body), testLimits)
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *apiError", err)
			}
			if ae.Status != http.StatusBadRequest || ae.Code != codeInvalidJSON || ae.Param != tt.wantParam {
				t.Errorf("got %d %s param %q, want 400 invalid_json param %q (%s)", ae.Status, ae.Code, ae.Param, tt.wantParam, ae.Message)
			}
			if !utf8.ValidString(ae.Message) || !strings.Contains(ae.Message, "not valid Unicode") {
				t.Errorf("message %q", ae.Message)
			}
		})
	}
}

// Escapes decode exactly as encoding/json decodes them (which is correct
// for every well-formed escape; only its handling of malformed text is not).
func TestDecodeEscapesAgreeWithEncodingJSON(t *testing.T) {
	texts := []string{
		`plain`, `\"quoted\"`, `back\\slash`, `\/`, `\b\f\n\r\t`, `\u00e9t\u00C9`, `\u20ac`,
		`\ud83d\ude00 pair`, `\uD83D\uDE00`, `\u0000nul`, `é直接😀`, `\\u0041 is not an escape`,
	}
	for _, text := range texts {
		body := `{"model":"m","input":"` + text + `"}`
		got, err := decodeEmbeddingsRequest([]byte(body), testLimits)
		if err != nil {
			t.Errorf("%s: rejected: %v", text, err)
			continue
		}
		var want string
		if err := json.Unmarshal([]byte(`"`+text+`"`), &want); err != nil {
			t.Fatal(err)
		}
		if got.Inputs[0] != want {
			t.Errorf("%s: decoded %q, encoding/json %q", text, got.Inputs[0], want)
		}
	}
}

func TestDecodeCountsEscapedTextByItsUTF8Length(t *testing.T) {
	// "\u00e9" is six bytes of JSON but two of UTF-8: the limit is on the text.
	limits := InputLimits{MaxInputs: 4, MaxTextBytes: 4}
	if _, err := decodeEmbeddingsRequest([]byte(`{"model":"m","input":"\u00e9\u00e9"}`), limits); err != nil {
		t.Errorf("4 bytes of UTF-8 rejected: %v", err)
	}
	_, err := decodeEmbeddingsRequest([]byte(`{"model":"m","input":["\u00e9\u00e9a"]}`), limits)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != codeInputTooLarge || !strings.Contains(ae.Message, "5 bytes") {
		t.Errorf("5 bytes of UTF-8: err = %v", err)
	}
}

func TestDecodeRefusesDuplicateFields(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","input":"a","input":"b"}`,
		`{"model":"m","input":"a","model":"n"}`,
		`{"model":"m","input":"a","mod\u0065l":"n"}`,
		`{"model":"m","input":"a","truncate":true,"truncate":null}`,
	} {
		_, err := decodeEmbeddingsRequest([]byte(body), testLimits)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Code != codeInvalidJSON || ae.Param == "" {
			t.Errorf("%s: err = %v, want invalid_json naming the field", body, err)
		}
	}
}

// The first problem in body order is reported, except that a count over
// the limit wins over an empty or oversized item.
func TestDecodeCountWinsOverItemProblems(t *testing.T) {
	limits := InputLimits{MaxInputs: 3, MaxTextBytes: 4}
	for _, items := range []string{`"","","",""`, `"aaaaa","a","a","a"`, `"a","","a","a","a"`} {
		_, err := decodeEmbeddingsRequest([]byte(`{"model":"m","input":[`+items+`]}`), limits)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Code != codeTooManyInputs || ae.Param != "input" {
			t.Errorf("[%s]: err = %v, want too_many_inputs", items, err)
		}
	}
	_, err := decodeEmbeddingsRequest([]byte(`{"model":"m","input":["a","","aaaaa"]}`), limits)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != codeInvalidValue || ae.Param != "input[1]" {
		t.Errorf("err = %v, want the first bad item, input[1]", err)
	}
}

// attackBody is the request of issue 11: a 4 MiB body of about 1.4 million
// empty strings.
func attackBody() []byte {
	const items = 1_398_000 // 3 bytes each: just under 4 MiB
	var b strings.Builder
	b.Grow(3*items + 32)
	b.WriteString(`{"model":"m","input":[""`)
	for range items - 1 {
		b.WriteString(`,""`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// Decoding costs what the limits admit, not what the client sends. Before
// the streaming decoder, this body made the gateway allocate 490 MB (5.6
// million allocations) to answer 400; now it allocates a few kilobytes.
func TestDecodeAllocationsDoNotFollowTheItemCount(t *testing.T) {
	body := attackBody()
	if len(body) < 4_190_000 || len(body) > 4<<20 {
		t.Fatalf("attack body is %d bytes", len(body))
	}
	limits := InputLimits{MaxInputs: 256, MaxTextBytes: 8192}
	var err error
	allocs := testing.AllocsPerRun(5, func() { _, err = decodeEmbeddingsRequest(body, limits) })
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != codeTooManyInputs || ae.Param != "input" {
		t.Fatalf("err = %v, want too_many_inputs", err)
	}
	if allocs > 20 {
		t.Errorf("%v allocations for one request, want at most 20", allocs)
	}
	bytes := allocatedBytes(func() { _, _ = decodeEmbeddingsRequest(body, limits) })
	if bytes > 64<<10 {
		t.Errorf("decoding allocated %d bytes for a %d-byte body, want at most 64 KiB", bytes, len(body))
	}
	t.Logf("attack body %d bytes: %v allocations, %d bytes", len(body), allocs, bytes)
}

// The largest request the limits admit allocates its texts once, plus a
// little: decoding costs about one body.
func TestDecodeAllocationsOfTheLargestValidRequest(t *testing.T) {
	limits := InputLimits{MaxInputs: 256, MaxTextBytes: 8192}
	text := strings.Repeat("a", limits.MaxTextBytes)
	body := []byte(`{"model":"m","input":["` + text + strings.Repeat(`","`+text, limits.MaxInputs-1) + `"]}`)
	var err error
	bytes := allocatedBytes(func() { _, err = decodeEmbeddingsRequest(body, limits) })
	if err != nil {
		t.Fatal(err)
	}
	texts := uint64(limits.MaxInputs * limits.MaxTextBytes)
	if bytes > texts+texts/10 || bytes > uint64(len(body))+64<<10 {
		t.Errorf("decoding %d bytes of text allocated %d bytes, want at most texts + 10%% and the body (%d) + 64 KiB", texts, bytes, len(body))
	}
	t.Logf("largest valid body %d bytes: %d bytes allocated", len(body), bytes)
}

// allocatedBytes is what f allocates on the heap.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// readBody allocates one buffer of the declared length, or, for a chunked
// body, at most about twice the limit in all (the memory plan counts that).
func TestReadBodyAllocatesByTheLength(t *testing.T) {
	const limit = 1 << 20
	for _, tt := range []struct {
		name     string
		size     int
		length   int64 // -1: chunked
		maxAlloc uint64
	}{
		{"with Content-Length", limit, limit, limit + 16<<10},
		{"chunked, at the limit", limit, -1, 2*limit + 16<<10},
		{"chunked, just over a power of two", limit/2 + 1, -1, 2*limit + 16<<10},
		{"chunked, small", 100, -1, 32 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			payload := strings.Repeat("x", tt.size)
			r := httptest.NewRequest(http.MethodPost, "/v1/embeddings", io.NopCloser(strings.NewReader(payload)))
			r.ContentLength = tt.length
			var body []byte
			var err error
			bytes := allocatedBytes(func() { body, err = readBody(httptest.NewRecorder(), r, limit) })
			if err != nil || string(body) != payload {
				t.Fatalf("read %d bytes, err %v", len(body), err)
			}
			if bytes > tt.maxAlloc {
				t.Errorf("reading %d bytes allocated %d, want at most %d", tt.size, bytes, tt.maxAlloc)
			}
		})
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/embeddings", io.NopCloser(strings.NewReader(strings.Repeat("x", limit+1))))
	r.ContentLength = -1
	if _, err := readBody(httptest.NewRecorder(), r, limit); !isMaxBytes(err) {
		t.Errorf("chunked body over the limit: err = %v, want *http.MaxBytesError", err)
	}
}
