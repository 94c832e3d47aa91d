package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
)

// The embeddings response, written by hand. encoding/json spends most of the
// gateway's CPU on a 32-text response (docs/benchmarks/flame-gateway.svg):
// reflection per float, then a second pass over the whole output to compact
// what embeddingVector.MarshalJSON returned. appendJSON writes the same bytes
// in one pass; encode_test.go checks them against encoding/json's for the
// awkward floats (subnormals, exponents, negative zero) and every field.

// jsonAppender is a value that appends its own JSON encoding to a buffer;
// writeJSON uses it instead of json.Marshal.
type jsonAppender interface {
	appendJSON(b []byte) ([]byte, error)
}

// Bytes per vector element in the decimal encoding, for the buffer's first
// size: "-0.012345678," is 13; most elements of a unit vector are that long.
const floatTextBytes = 13

func (r embeddingsResponse) appendJSON(b []byte) ([]byte, error) {
	if b == nil {
		size := 128
		for _, d := range r.Data {
			size += 96 + floatTextBytes*len(d.Embedding.values)
		}
		b = make([]byte, 0, size)
	}
	b = append(b, `{"object":`...)
	b = appendJSONString(b, r.Object)
	b = append(b, `,"data":[`...)
	for i, d := range r.Data {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = d.appendJSON(b); err != nil {
			return nil, err
		}
	}
	b = append(b, `],"model":`...)
	b = appendJSONString(b, r.Model)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(r.Usage.PromptTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(r.Usage.TotalTokens), 10)
	return append(b, "}}"...), nil
}

func (o embeddingObject) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"object":`...)
	b = appendJSONString(b, o.Object)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(o.Index), 10)
	b = append(b, `,"embedding":`...)
	b, err := o.Embedding.appendJSON(b)
	if err != nil {
		return nil, err
	}
	if o.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, '}'), nil
}

func (v embeddingVector) appendJSON(b []byte) ([]byte, error) {
	if v.base64 {
		// Base64's alphabet needs no JSON escaping.
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, float32Bytes(v.values))
		return append(b, '"'), nil
	}
	b = append(b, '[')
	for i, f := range v.values {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendFloat32(b, f); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendFloat32 formats f as encoding/json does (its floatEncoder for 32-bit
// floats, ES6 number formatting): the shortest text that reads back as the
// same float32, with an exponent only outside [1e-6, 1e21).
func appendFloat32(b []byte, f float32) ([]byte, error) {
	f64 := float64(f)
	if math.IsInf(f64, 0) || math.IsNaN(f64) {
		return nil, &json.UnsupportedValueError{Str: strconv.FormatFloat(f64, 'g', -1, 32)}
	}
	format := byte('f')
	if abs := math.Abs(f64); abs != 0 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f64, format, -1, 32)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendJSONString appends s as encoding/json encodes a string (with its
// HTML escaping). Only short fixed strings and model names come here.
func appendJSONString(b []byte, s string) []byte {
	quoted, _ := json.Marshal(s) // a string always marshals
	return append(b, quoted...)
}

// float32Bytes is values as little-endian IEEE 754 float32 bytes.
func float32Bytes(values []float32) []byte {
	buf := make([]byte, 4*len(values))
	for i, f := range values {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
	}
	return buf
}
