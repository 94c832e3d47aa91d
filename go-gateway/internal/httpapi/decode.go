package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"

	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// Request decoding and validation for POST /v1/embeddings. It is written by
// hand instead of json.Unmarshal into a struct so that every rejection can
// name the offending parameter (OpenAI's "param") and say what is wrong in
// words a client developer understands.

// InputLimits bound the texts of one embeddings request.
type InputLimits struct {
	MaxInputs    int
	MaxTextBytes int
}

// tightenedBy returns the stricter of l and the core's advertised limits.
func (l InputLimits) tightenedBy(info upstream.ModelInfo) InputLimits {
	if info.MaxTextsPerRequest > 0 {
		l.MaxInputs = min(l.MaxInputs, info.MaxTextsPerRequest)
	}
	if info.MaxTextBytes > 0 {
		l.MaxTextBytes = min(l.MaxTextBytes, info.MaxTextBytes)
	}
	return l
}

// embeddingsRequest is a syntactically valid embeddings request.
type embeddingsRequest struct {
	Inputs []string
	// InputIsString records that "input" was a string rather than an array,
	// so errors about it say "input" rather than "input[0]".
	InputIsString  bool
	Model          string
	EncodingFormat string // encodingFloat or encodingBase64
	Dimensions     int    // 0 when not given
	Truncate       bool
}

// embeddingsFields are the accepted request fields. "user" is accepted and
// ignored, as OpenAI uses it only for abuse monitoring; "truncate" is a
// Tandem extension.
var embeddingsFields = []string{"input", "model", "encoding_format", "dimensions", "user", "truncate"}

// requireJSON rejects requests whose body is not declared as JSON.
func requireJSON(r *http.Request) error {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return errUnsupportedMediaType()
	}
	return nil
}

// readBody reads the whole body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	// A declared length over the limit is refused before reading anything.
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, err
		}
		return nil, errUnreadableBody(fmt.Errorf("read request body: %w", err))
	}
	return body, nil
}

// decodeEmbeddingsRequest parses and validates a request body against
// limits. Every error it returns is an *apiError with a 4xx status.
func decodeEmbeddingsRequest(body []byte, limits InputLimits) (embeddingsRequest, error) {
	fields, err := decodeObject(body)
	if err != nil {
		return embeddingsRequest{}, err
	}
	if err := rejectUnknownFields(fields); err != nil {
		return embeddingsRequest{}, err
	}

	req := embeddingsRequest{EncodingFormat: encodingFloat, Truncate: true}

	raw, ok := present(fields, "model")
	if !ok {
		return req, invalidRequest(codeMissingParameter, "model", "you must provide a model parameter")
	}
	if err := json.Unmarshal(raw, &req.Model); err != nil {
		return req, invalidRequest(codeInvalidType, "model", "model must be a string")
	}
	if req.Model == "" {
		return req, invalidRequest(codeInvalidValue, "model", "model must not be empty")
	}

	raw, ok = present(fields, "input")
	if !ok {
		return req, invalidRequest(codeMissingParameter, "input", "you must provide an input parameter: a string or an array of strings")
	}
	if req.Inputs, req.InputIsString, err = decodeInput(raw); err != nil {
		return req, err
	}
	if err := validateInputs(req.Inputs, req.InputIsString, limits); err != nil {
		return req, err
	}

	if raw, ok := present(fields, "encoding_format"); ok {
		if err := json.Unmarshal(raw, &req.EncodingFormat); err != nil ||
			(req.EncodingFormat != encodingFloat && req.EncodingFormat != encodingBase64) {
			return req, invalidRequest(codeInvalidValue, "encoding_format", `encoding_format must be "float" or "base64"`)
		}
	}
	if raw, ok := present(fields, "dimensions"); ok {
		if err := json.Unmarshal(raw, &req.Dimensions); err != nil {
			return req, invalidRequest(codeInvalidType, "dimensions", "dimensions must be an integer")
		}
		if req.Dimensions < 1 {
			return req, invalidRequest(codeInvalidValue, "dimensions", "dimensions must be at least 1")
		}
	}
	if raw, ok := present(fields, "truncate"); ok {
		if err := json.Unmarshal(raw, &req.Truncate); err != nil {
			return req, invalidRequest(codeInvalidType, "truncate", "truncate must be a boolean")
		}
	}
	if raw, ok := present(fields, "user"); ok {
		var user string
		if err := json.Unmarshal(raw, &user); err != nil {
			return req, invalidRequest(codeInvalidType, "user", "user must be a string")
		}
	}
	return req, nil
}

// decodeObject parses body as exactly one JSON object.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, invalidRequest(codeInvalidJSON, "", "the request body must be a JSON object")
		}
		if errors.Is(err, io.EOF) {
			return nil, invalidRequest(codeInvalidJSON, "", "the request body is empty; expected a JSON object")
		}
		// Syntax errors describe the client's own input, so they are safe
		// and useful to show.
		return nil, invalidRequest(codeInvalidJSON, "", "the request body is not valid JSON: %v", err)
	}
	if fields == nil { // the body was "null"
		return nil, invalidRequest(codeInvalidJSON, "", "the request body must be a JSON object")
	}
	// Only whitespace may follow the object; "{...}garbage" or two objects
	// suggest a client bug that silently ignoring the rest would hide.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidRequest(codeInvalidJSON, "", "unexpected data after the JSON object")
	}
	return fields, nil
}

func rejectUnknownFields(fields map[string]json.RawMessage) error {
	var unknown []string
	for name := range fields {
		if !slices.Contains(embeddingsFields, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown) // report the same one every time
	name := echo(unknown[0])
	return invalidRequest(codeUnknownParameter, name, "unrecognized request argument supplied: %s", name)
}

// present returns a field's raw value; a JSON null counts as absent, as
// some clients send null for parameters they do not set.
func present(fields map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// decodeInput accepts a string or an array of strings. OpenAI also accepts
// token ids (an array of integers, or an array of such arrays); the core
// tokenizes itself, so those get a clear "unsupported" instead of a
// confusing type error.
func decodeInput(raw json.RawMessage) (inputs []string, isString bool, err error) {
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, invalidRequest(codeInvalidType, "input", "input must be a string or an array of strings")
		}
		return []string{s}, true, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, false, invalidRequest(codeInvalidType, "input", "input must be a string or an array of strings")
		}
		inputs := make([]string, len(items))
		for i, item := range items {
			param := fmt.Sprintf("input[%d]", i)
			switch item[0] {
			case '"':
				if err := json.Unmarshal(item, &inputs[i]); err != nil {
					return nil, false, invalidRequest(codeInvalidType, param, "%s must be a string", param)
				}
			case '[':
				return nil, false, invalidRequest(codeUnsupportedInput, param,
					"%s is an array of token ids; token input is not supported, send the text as a string", param)
			case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				if i == 0 { // an array of integers: one text as token ids
					return nil, false, invalidRequest(codeUnsupportedInput, "input",
						"input is an array of token ids; token input is not supported, send the text as a string")
				}
				return nil, false, invalidRequest(codeInvalidType, param, "%s must be a string", param)
			default:
				return nil, false, invalidRequest(codeInvalidType, param, "%s must be a string", param)
			}
		}
		return inputs, false, nil
	default:
		return nil, false, invalidRequest(codeInvalidType, "input", "input must be a string or an array of strings")
	}
}

// validateInputs checks the number and size of the texts.
func validateInputs(inputs []string, isString bool, limits InputLimits) error {
	if len(inputs) == 0 {
		return invalidRequest(codeInvalidValue, "input", "input must not be an empty array")
	}
	if len(inputs) > limits.MaxInputs {
		return invalidRequest(codeTooManyInputs, "input",
			"input has %d items; at most %d are allowed per request", len(inputs), limits.MaxInputs)
	}
	for i, text := range inputs {
		param := fmt.Sprintf("input[%d]", i)
		if isString {
			param = "input"
		}
		if text == "" {
			return invalidRequest(codeInvalidValue, param, "%s must not be an empty string", param)
		}
		if len(text) > limits.MaxTextBytes {
			return invalidRequest(codeInputTooLarge, param,
				"%s is %d bytes long; at most %d bytes (UTF-8) are allowed per text", param, len(text), limits.MaxTextBytes)
		}
	}
	return nil
}

// checkAgainstModel validates what depends on the served model: its name,
// its dimension, and the core's own limits where they are stricter.
func (req embeddingsRequest) checkAgainstModel(info upstream.ModelInfo, limits InputLimits) error {
	if !info.Accepts(req.Model) {
		return errModelNotFound(req.Model)
	}
	if req.Dimensions != 0 && req.Dimensions != info.Dimension {
		return invalidRequest(codeInvalidValue, "dimensions",
			"model %s produces %d-dimensional embeddings and cannot shorten them; omit dimensions or set it to %d",
			info.ID, info.Dimension, info.Dimension)
	}
	return validateInputs(req.Inputs, req.InputIsString, limits.tightenedBy(info))
}
