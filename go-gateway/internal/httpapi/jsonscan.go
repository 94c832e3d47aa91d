package httpapi

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A JSON scanner over a request body held in memory, for decode.go.
//
// encoding/json is not used to read requests for two reasons. Unmarshalling
// materialises the whole document before anything can be checked, so a
// 4 MiB body of a million empty strings costs hundreds of megabytes before
// the item count can be rejected; this scanner walks the bytes in place and
// lets the caller stop at the first item over a limit. And encoding/json
// silently replaces invalid UTF-8 and lone surrogate escapes ("\ud800") by
// U+FFFD, so a client would get the embedding of a text it did not send;
// this scanner rejects both.
//
// The scanner allocates nothing itself: strings are returned as spans of
// the body with their decoded length, and decoded only when the caller
// wants the value (jsonString.decode).

// scanner reads JSON tokens from data, front to back.
type scanner struct {
	data []byte
	pos  int
}

// syntaxError is malformed JSON at an offset of the body.
type syntaxError struct {
	offset int
	msg    string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.offset) }

// encodingError is a string that is well-formed JSON but not Unicode text:
// invalid UTF-8 bytes, or an escaped UTF-16 surrogate without its pair.
type encodingError struct {
	offset int
	msg    string
}

func (e *encodingError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.offset) }

func (s *scanner) fail(format string, args ...any) error {
	return &syntaxError{offset: s.pos, msg: fmt.Sprintf(format, args...)}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// atEnd reports whether only whitespace is left.
func (s *scanner) atEnd() bool { return s.peek() == 0 && s.pos == len(s.data) }

// consume skips whitespace and the byte c, which must come next.
func (s *scanner) consume(c byte, what string) error {
	switch got := s.peek(); {
	case s.pos == len(s.data):
		return s.fail("unexpected end of JSON input, expected %s", what)
	case got != c:
		return s.fail("invalid character %s, expected %s", quoteByte(got), what)
	}
	s.pos++
	return nil
}

// expectValue checks that a JSON value starts at the next non-space byte,
// so that callers can refuse a value of the wrong kind by its first byte
// and still report malformed JSON as such.
func (s *scanner) expectValue() error {
	c := s.peek()
	switch {
	case s.pos == len(s.data):
		return s.fail("unexpected end of JSON input, expected a value")
	case strings.IndexByte(`"{[tfn-0123456789`, c) < 0:
		return s.fail("invalid character %s, expected a value", quoteByte(c))
	}
	return nil
}

// jsonString is a scanned string: its bytes between the quotes, still
// escaped, and the length of its UTF-8 decoding.
type jsonString struct {
	raw     []byte
	len     int
	escaped bool
}

// str scans the string that starts at the next non-space byte.
func (s *scanner) str() (jsonString, error) {
	if err := s.consume('"', "a string"); err != nil {
		return jsonString{}, err
	}
	start := s.pos
	out := jsonString{}
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			out.raw = s.data[start:s.pos]
			s.pos++
			return out, nil
		case c == '\\':
			out.escaped = true
			n, err := s.escape()
			if err != nil {
				return jsonString{}, err
			}
			out.len += n
		case c < 0x20:
			return jsonString{}, s.fail("invalid character %s in string literal", quoteByte(c))
		case c < utf8.RuneSelf:
			s.pos++
			out.len++
		default:
			// DecodeRune refuses overlong forms, surrogates (ED A0 80) and
			// code points above U+10FFFF, as RFC 3629 requires.
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return jsonString{}, &encodingError{offset: s.pos, msg: "invalid UTF-8 byte " + quoteByte(c)}
			}
			s.pos += size
			out.len += size
		}
	}
	return jsonString{}, s.fail("unexpected end of JSON input in string literal")
}

// escape scans the escape sequence at pos and returns the length of its
// UTF-8 decoding.
func (s *scanner) escape() (int, error) {
	if s.pos+1 >= len(s.data) {
		return 0, s.fail("unexpected end of JSON input in string escape")
	}
	switch c := s.data[s.pos+1]; c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
		return 1, nil
	case 'u':
	default:
		return 0, s.fail("invalid escape %s in string literal", quoteByte(c))
	}
	at := s.pos
	r, err := s.hex4()
	if err != nil {
		return 0, err
	}
	switch {
	case utf16.IsSurrogate(r) && r < 0xDC00: // a high surrogate: its low half must follow
		if s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
			low, err := s.hex4()
			if err != nil {
				return 0, err
			}
			if pair := utf16.DecodeRune(r, low); pair != utf8.RuneError {
				return utf8.RuneLen(pair), nil
			}
		}
		return 0, &encodingError{offset: at, msg: "lone UTF-16 surrogate escape " + string(s.data[at:at+6])}
	case utf16.IsSurrogate(r): // a low surrogate with no high one before it
		return 0, &encodingError{offset: at, msg: "lone UTF-16 surrogate escape " + string(s.data[at:at+6])}
	}
	return utf8.RuneLen(r), nil
}

// hex4 reads "\uXXXX" at pos.
func (s *scanner) hex4() (rune, error) {
	if s.pos+6 > len(s.data) {
		s.pos = len(s.data)
		return 0, s.fail("unexpected end of JSON input in \\u escape")
	}
	var r rune
	for _, c := range s.data[s.pos+2 : s.pos+6] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, s.fail("invalid character %s in \\u escape", quoteByte(c))
		}
		r = r<<4 | rune(d)
	}
	s.pos += 6
	return r, nil
}

// decode returns the string's value. It is only called on a string str
// accepted, so every escape is known to be well formed.
func (js jsonString) decode() string {
	if !js.escaped {
		return string(js.raw)
	}
	var b strings.Builder
	b.Grow(js.len)
	raw := js.raw
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hexRune(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r = utf16.DecodeRune(r, hexRune(raw[i+2:i+6]))
				i += 6
			}
			b.WriteRune(r)
			continue
		default: // '"', '\\', '/'
			b.WriteByte(raw[i+1])
		}
		i += 2
	}
	return b.String()
}

func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a':
			r = r<<4 | rune(c-'a'+10)
		default:
			r = r<<4 | rune(c-'A'+10)
		}
	}
	return r
}

// equals reports whether the string's value is name, without decoding it.
// Field names are plain ASCII, so an escaped spelling of one ("mod\u0065l")
// is decoded first; that costs at most one short allocation per field.
func (js jsonString) equals(name string) bool {
	if js.len != len(name) {
		return false
	}
	if !js.escaped {
		return string(js.raw) == name // compiled without an allocation
	}
	return js.decode() == name
}

// literal scans true, false or null.
func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.fail("invalid literal, expected %s", word)
	}
	s.pos += len(word)
	return nil
}

// number scans a JSON number (RFC 8259, section 6) and returns its text.
func (s *scanner) number() ([]byte, error) {
	start := s.pos
	digits := func() int {
		n := 0
		for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.pos < len(s.data) && s.data[s.pos] == '-' {
		s.pos++
	}
	first := s.pos
	if n := digits(); n == 0 {
		return nil, s.fail("invalid number, expected a digit")
	} else if n > 1 && s.data[first] == '0' {
		return nil, &syntaxError{offset: first, msg: "invalid number, leading zero"}
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return nil, s.fail("invalid number, expected a digit after the decimal point")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return nil, s.fail("invalid number, expected a digit in the exponent")
		}
	}
	return s.data[start:s.pos], nil
}

// quoteByte shows a byte in an error message, escaped when it is not
// printable ASCII so that the message stays valid UTF-8.
func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("'%c'", c)
	}
	return fmt.Sprintf("0x%02x", c)
}
