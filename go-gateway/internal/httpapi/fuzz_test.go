package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"unicode/utf8"
)

// Fuzz targets. The seed corpus lives in testdata/fuzz/<FuzzName>/ and runs
// with every `go test`; fuzz-targets.txt lists the targets for `make` to run
// briefly with -fuzz.

// Small limits, so that random inputs reach them.
var fuzzLimits = InputLimits{MaxInputs: 4, MaxTextBytes: 32}

// FuzzDecodeEmbeddingsRequest checks that decoding never panics, that every
// rejection is a 4xx in the error shape, and that every accepted request is
// valid JSON within the limits.
func FuzzDecodeEmbeddingsRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","input":"hello"}`))
	f.Add([]byte(`{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":384,"truncate":false,"user":"u"}`))
	f.Add([]byte(`{"model":"m","input":[1,2,3]}`))
	f.Add([]byte(`{"model":"m","input":[""]} trailing`))
	f.Add([]byte(`{"model":"m","input":["abc` + "\xff\xfe" + `"]}`))
	f.Add([]byte(`{"model":"m","input":["\ud83d\ude00","\u00e9\n\\"]}`))
	f.Add([]byte(`{"model":"m","input":["\ud800"]}`))
	f.Add([]byte(`{"model":"m","input":"a","input":"b"}`))
	f.Add([]byte(`{"model":"m","dimensions":-0.5e+3,"truncate":true,"input":[]}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeEmbeddingsRequest(body, fuzzLimits)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("rejection is not an *apiError: %v", err)
			}
			if ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("rejection has status %d, want 4xx", ae.Status)
			}
			if ae.Message == "" || ae.Type == "" || ae.Code == "" {
				t.Fatalf("incomplete error %+v", ae)
			}
			out, merr := json.Marshal(errorResponse{Error: errorBody{Message: ae.Message, Type: ae.Type, Param: nullable(ae.Param), Code: nullable(ae.Code)}})
			if merr != nil || !json.Valid(out) {
				t.Fatalf("error body does not encode: %v", merr)
			}
			return
		}

		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		// What was accepted reads the same with encoding/json, the
		// reference (which is right about every body that is valid text).
		var ref struct {
			Model string `json:"model"`
			Input any    `json:"input"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("encoding/json refuses accepted body %q: %v", body, err)
		}
		want := []string{}
		switch v := ref.Input.(type) {
		case string:
			want = append(want, v)
		case []any:
			for _, item := range v {
				s, _ := item.(string)
				want = append(want, s)
			}
		}
		if ref.Model != req.Model || !slices.Equal(want, req.Inputs) {
			t.Fatalf("decoded model %q inputs %q, encoding/json %q %q", req.Model, req.Inputs, ref.Model, want)
		}
		if n := len(req.Inputs); n < 1 || n > fuzzLimits.MaxInputs {
			t.Fatalf("accepted %d inputs, limit %d", n, fuzzLimits.MaxInputs)
		}
		for i, text := range req.Inputs {
			if text == "" || len(text) > fuzzLimits.MaxTextBytes || !utf8.ValidString(text) {
				t.Fatalf("accepted input %d = %q", i, text)
			}
		}
		if req.InputIsString && len(req.Inputs) != 1 {
			t.Fatalf("string input decoded to %d texts", len(req.Inputs))
		}
		if req.Model == "" {
			t.Fatal("accepted an empty model")
		}
		if !slices.Contains([]string{encodingFloat, encodingBase64}, req.EncodingFormat) {
			t.Fatalf("accepted encoding_format %q", req.EncodingFormat)
		}
		if req.Dimensions < 0 {
			t.Fatalf("accepted dimensions %d", req.Dimensions)
		}
	})
}

// FuzzEmbeddingsHandler sends arbitrary bodies through the whole HTTP stack
// (with a healthy stub core): the answer is a 200 with one embedding per
// input, or a 4xx in the error shape; never a 5xx, never a panic.
func FuzzEmbeddingsHandler(f *testing.F) {
	f.Add(`{"model":"all-MiniLM-L6-v2","input":"hello"}`)
	f.Add(`{"model":"sentence-transformers/all-MiniLM-L6-v2","input":["a","b"],"encoding_format":"base64"}`)
	f.Add(`{"model":"other","input":"a"}`)
	f.Add(`{"model":"all-MiniLM-L6-v2","input":"a","dimensions":12}`)

	s := newTestServer(f, func(d *Deps) {
		d.Limits.MaxBodyBytes = 4096
		d.Limits.Input = fuzzLimits
	})
	f.Fuzz(func(t *testing.T, body string) {
		rec := s.postJSON(body)
		switch {
		case rec.Code == http.StatusOK:
			var resp struct {
				Object string `json:"object"`
				Data   []struct {
					Embedding json.RawMessage `json:"embedding"`
				} `json:"data"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Object != "list" {
				t.Fatalf("200 with body %s", rec.Body)
			}
			if n := len(resp.Data); n < 1 || n > fuzzLimits.MaxInputs {
				t.Fatalf("200 with %d embeddings", n)
			}
		case rec.Code >= 400 && rec.Code < 500:
			checkErrorShape(t, rec)
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
