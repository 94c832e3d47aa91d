package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// Request decoding and validation for POST /v1/embeddings. It is written by
// hand, over the scanner in jsonscan.go, instead of json.Unmarshal into a
// struct: so that every rejection can name the offending parameter
// (OpenAI's "param") and say what is wrong in words a client developer
// understands, so that memory follows the limits rather than the client's
// item count, and so that text that is not valid Unicode is refused rather
// than silently altered.

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

// requireJSON rejects requests whose body is not declared as JSON.
func requireJSON(r *http.Request) error {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return errUnsupportedMediaType()
	}
	return nil
}

// bodyStartBytes is the first buffer for a body of unknown length
// (chunked); it doubles as needed, up to the limit.
const bodyStartBytes = 16 << 10

// readBody reads the whole body, at most limit bytes. A body with a
// Content-Length is read into one buffer of exactly that size; one without
// (chunked) starts small and doubles up to the limit, so all it allocates
// is at most about twice the limit (io.ReadAll's smaller steps cost up to
// five times the body). docs/gateway.md ("Memory") counts on these bounds.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	// A declared length over the limit is refused before reading anything.
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	reader := http.MaxBytesReader(w, r.Body, limit)
	size := int64(bodyStartBytes)
	if r.ContentLength >= 0 {
		size = r.ContentLength + 1 // one spare byte to read the end into
	}
	buf := make([]byte, 0, min(size, limit+1))
	for {
		if len(buf) == cap(buf) {
			// Double, but jump to the limit (plus the spare byte) instead of
			// a step that would be nearly full there: all buffers together
			// then stay under twice the limit.
			next := 2 * cap(buf)
			if 2*next > int(limit+1) {
				next = int(limit + 1)
			}
			// make+copy rather than append or slices.Grow, whose growth
			// policy rounds capacities up past the step.
			grown := make([]byte, len(buf), max(next, cap(buf)+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := reader.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			return buf, nil
		case err == nil:
		case isMaxBytes(err):
			return nil, err
		default:
			return nil, errUnreadableBody(fmt.Errorf("read request body: %w", err))
		}
	}
}

func isMaxBytes(err error) bool {
	_, ok := errors.AsType[*http.MaxBytesError](err)
	return ok
}

// The request fields, as bits of requestDecoder.seen.
const (
	fieldInput = 1 << iota
	fieldModel
	fieldEncodingFormat
	fieldDimensions
	fieldUser
	fieldTruncate
)

// embeddingsFields are the accepted request fields. "user" is accepted and
// ignored, as OpenAI uses it only for abuse monitoring; "truncate" is a
// Tandem extension.
var embeddingsFields = []struct {
	name string
	bit  int
}{
	{"input", fieldInput}, {"model", fieldModel}, {"encoding_format", fieldEncodingFormat},
	{"dimensions", fieldDimensions}, {"user", fieldUser}, {"truncate", fieldTruncate},
}

// decodeEmbeddingsRequest parses and validates a request body against
// limits. Every error it returns is an *apiError with a 4xx status.
//
// The body is read once, front to back, and the first problem found is the
// one reported, with two exceptions that keep the answers of a bounded
// request independent of item order: a count over MaxInputs wins over any
// empty or oversized item, and a missing field is noticed at the end. The
// walk stops at item MaxInputs+1 and builds no message, name or string for
// an item before the count allows it, so decoding allocates in proportion
// to what the limits admit, never to what a client sends (decode_test.go
// measures it).
func decodeEmbeddingsRequest(body []byte, limits InputLimits) (embeddingsRequest, error) {
	d := requestDecoder{
		s:      scanner{data: body},
		limits: limits,
		req:    embeddingsRequest{EncodingFormat: encodingFloat, Truncate: true},
	}
	if err := d.object(); err != nil {
		return embeddingsRequest{}, err
	}
	if d.req.Model == "" {
		return embeddingsRequest{}, invalidRequest(codeMissingParameter, "model", "you must provide a model parameter")
	}
	if d.req.Inputs == nil {
		return embeddingsRequest{}, invalidRequest(codeMissingParameter, "input", "you must provide an input parameter: a string or an array of strings")
	}
	return d.req, nil
}

// requestDecoder holds the state of one decodeEmbeddingsRequest.
type requestDecoder struct {
	s      scanner
	limits InputLimits
	req    embeddingsRequest
	seen   int // fields already given, to refuse duplicates
}

// object reads the body: exactly one JSON object, then only whitespace.
func (d *requestDecoder) object() error {
	s := &d.s
	switch c := s.peek(); {
	case s.atEnd():
		return invalidRequest(codeInvalidJSON, "", "the request body is empty; expected a JSON object")
	case c != '{':
		return invalidRequest(codeInvalidJSON, "", "the request body must be a JSON object")
	}
	s.pos++
	if s.peek() == '}' {
		s.pos++
	} else {
		for {
			key, err := s.str()
			if err != nil {
				return jsonError(err, "")
			}
			if err := s.consume(':', "':' after a field name"); err != nil {
				return jsonError(err, "")
			}
			if err := d.field(key); err != nil {
				return err
			}
			if s.peek() == ',' {
				s.pos++
				continue
			}
			if err := s.consume('}', "',' or '}' after a field value"); err != nil {
				return jsonError(err, "")
			}
			break
		}
	}
	// Only whitespace may follow the object; "{...}garbage" or two objects
	// suggest a client bug that silently ignoring the rest would hide.
	if !s.atEnd() {
		return invalidRequest(codeInvalidJSON, "", "unexpected data after the JSON object")
	}
	return nil
}

// field reads the value of the field named key.
func (d *requestDecoder) field(key jsonString) error {
	bit := 0
	for _, f := range embeddingsFields {
		if key.equals(f.name) {
			bit = f.bit
			break
		}
	}
	if bit == 0 {
		name := echo(key.decode())
		return invalidRequest(codeUnknownParameter, name, "unrecognized request argument supplied: %s", name)
	}
	if d.seen&bit != 0 {
		// encoding/json would keep the last value and another parser the
		// first; refusing the ambiguity keeps every reader of the request
		// in agreement.
		name := key.decode()
		return invalidRequest(codeInvalidJSON, name, "%s is given more than once; send each field once", name)
	}
	d.seen |= bit

	s := &d.s
	if err := s.expectValue(); err != nil {
		return jsonError(err, "")
	}
	if s.peek() == 'n' { // null: some clients send it for parameters they do not set
		return jsonError(s.literal("null"), "")
	}
	switch bit {
	case fieldModel:
		v, err := d.stringValue("model", codeInvalidType, "model must be a string")
		if err != nil {
			return err
		}
		if v.len == 0 {
			return invalidRequest(codeInvalidValue, "model", "model must not be empty")
		}
		d.req.Model = v.decode()
	case fieldInput:
		return d.input()
	case fieldEncodingFormat:
		const msg = `encoding_format must be "float" or "base64"`
		v, err := d.stringValue("encoding_format", codeInvalidValue, msg)
		switch {
		case err != nil:
			return err
		case v.equals(encodingFloat):
			d.req.EncodingFormat = encodingFloat
		case v.equals(encodingBase64):
			d.req.EncodingFormat = encodingBase64
		default:
			return invalidRequest(codeInvalidValue, "encoding_format", msg)
		}
	case fieldDimensions:
		const msg = "dimensions must be an integer"
		if c := s.peek(); c != '-' && (c < '0' || c > '9') {
			return invalidRequest(codeInvalidType, "dimensions", msg)
		}
		raw, err := s.number()
		if err != nil {
			return jsonError(err, "")
		}
		n, err := strconv.Atoi(string(raw))
		if err != nil { // a fraction, an exponent, or out of range
			return invalidRequest(codeInvalidType, "dimensions", msg)
		}
		if n < 1 {
			return invalidRequest(codeInvalidValue, "dimensions", "dimensions must be at least 1")
		}
		d.req.Dimensions = n
	case fieldTruncate:
		switch s.peek() {
		case 't':
			d.req.Truncate = true
			return jsonError(s.literal("true"), "")
		case 'f':
			d.req.Truncate = false
			return jsonError(s.literal("false"), "")
		}
		return invalidRequest(codeInvalidType, "truncate", "truncate must be a boolean")
	case fieldUser:
		// Read for its encoding only: the value is not used.
		_, err := d.stringValue("user", codeInvalidType, "user must be a string")
		return err
	}
	return nil
}

// stringValue reads a string value, or answers code and msg for any other
// kind of value.
func (d *requestDecoder) stringValue(param, code, msg string) (jsonString, error) {
	if d.s.peek() != '"' {
		return jsonString{}, invalidRequest(code, param, "%s", msg)
	}
	v, err := d.s.str()
	if err != nil {
		return jsonString{}, jsonError(err, param)
	}
	return v, nil
}

// input reads "input": a string or an array of strings. OpenAI also accepts
// token ids (an array of integers, or an array of such arrays); the core
// tokenizes itself, so those get a clear "unsupported" instead of a
// confusing type error.
func (d *requestDecoder) input() error {
	s := &d.s
	switch s.peek() {
	case '"':
		v, err := s.str()
		if err != nil {
			return jsonError(err, "input")
		}
		if err := checkText(-1, v.len, d.limits); err != nil {
			return err
		}
		d.req.Inputs, d.req.InputIsString = []string{v.decode()}, true
		return nil
	case '[':
		s.pos++
	default:
		return invalidRequest(codeInvalidType, "input", "input must be a string or an array of strings")
	}

	if s.peek() == ']' {
		return invalidRequest(codeInvalidValue, "input", "input must not be an empty array")
	}
	// The first empty or oversized item. Its error is returned only once
	// the count is known to be within the limit, and items after it are
	// checked but not kept.
	var bad error
	inputs := []string{}
	for i := 0; ; i++ {
		if i == d.limits.MaxInputs {
			return invalidRequest(codeTooManyInputs, "input",
				"input has more than %d items; at most %d are allowed per request", d.limits.MaxInputs, d.limits.MaxInputs)
		}
		switch c := s.peek(); {
		case c == '"':
			v, err := s.str()
			if err != nil {
				return jsonError(err, itemParam(i))
			}
			if bad == nil {
				if bad = checkText(i, v.len, d.limits); bad == nil {
					inputs = append(inputs, v.decode())
				}
			}
		case c == '[':
			param := itemParam(i)
			return invalidRequest(codeUnsupportedInput, param,
				"%s is an array of token ids; token input is not supported, send the text as a string", param)
		case c == '-' || ('0' <= c && c <= '9'):
			if i == 0 { // an array of integers: one text as token ids
				return invalidRequest(codeUnsupportedInput, "input",
					"input is an array of token ids; token input is not supported, send the text as a string")
			}
			param := itemParam(i)
			return invalidRequest(codeInvalidType, param, "%s must be a string", param)
		case c == '{' || c == 't' || c == 'f' || c == 'n':
			param := itemParam(i)
			return invalidRequest(codeInvalidType, param, "%s must be a string", param)
		default:
			return jsonError(s.fail("invalid character %s, expected an array item", quoteByte(c)), "")
		}
		if s.peek() == ',' {
			s.pos++
			continue
		}
		if err := s.consume(']', "',' or ']' after an array item"); err != nil {
			return jsonError(err, "")
		}
		break
	}
	if bad != nil {
		return bad
	}
	d.req.Inputs = inputs
	return nil
}

func itemParam(i int) string { return "input[" + strconv.Itoa(i) + "]" }

// checkText checks one text's UTF-8 length; index -1 is a lone string input.
// It builds its message only for a text it refuses.
func checkText(index, length int, limits InputLimits) error {
	if length != 0 && length <= limits.MaxTextBytes {
		return nil
	}
	param := "input"
	if index >= 0 {
		param = itemParam(index)
	}
	if length == 0 {
		return invalidRequest(codeInvalidValue, param, "%s must not be an empty string", param)
	}
	return invalidRequest(codeInputTooLarge, param,
		"%s is %d bytes long; at most %d bytes (UTF-8) are allowed per text", param, length, limits.MaxTextBytes)
}

// jsonError turns a scanner error into the client's 400: malformed JSON
// anywhere, or a string of the field param that is not Unicode text. The
// latter is never repaired: encoding/json would replace the bytes by U+FFFD
// and the core would embed a text the client did not send.
func jsonError(err error, param string) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*encodingError](err); ok {
		what := param
		if what == "" {
			what = "a field name"
		}
		return invalidRequest(codeInvalidJSON, param,
			"%s is not valid Unicode text: %v; JSON text must be UTF-8 (RFC 8259) and a \\u escape of a UTF-16 surrogate needs its pair", what, e)
	}
	// Syntax errors describe the client's own input, so they are safe and
	// useful to show.
	return invalidRequest(codeInvalidJSON, "", "the request body is not valid JSON: %v", err)
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
		if isString {
			i = -1
		}
		if err := checkText(i, len(text), limits); err != nil {
			return err
		}
	}
	return nil
}

// checkAgainstModel validates what depends on the served model: its name,
// its dimension, and the core's own limits where they are stricter.
func (req embeddingsRequest) checkAgainstModel(pool Pool, info upstream.ModelInfo, limits InputLimits) error {
	if !pool.accepts(req.Model, info) {
		return errModelNotFound(req.Model)
	}
	if req.Dimensions != 0 && req.Dimensions != info.Dimension {
		return invalidRequest(codeInvalidValue, "dimensions",
			"model %s produces %d-dimensional embeddings and cannot shorten them; omit dimensions or set it to %d",
			info.ID, info.Dimension, info.Dimension)
	}
	return validateInputs(req.Inputs, req.InputIsString, limits.tightenedBy(info))
}
