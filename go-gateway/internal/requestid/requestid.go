// Package requestid carries the id that ties together every log line, the
// HTTP response and the core's logs for one request.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Header is the HTTP header a client may send and always gets back.
const Header = "X-Request-Id"

// MetadataKey is the gRPC metadata key the core reads the id from.
const MetadataKey = "x-request-id"

// maxLen bounds a client-chosen id: it is copied into every log line and
// into upstream metadata, so an unbounded one would be a cheap amplifier.
const maxLen = 128

type contextKey struct{}

// New returns a random 128-bit id in hex.
func New() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (it panics instead if the
	// system's randomness fails), as documented since Go 1.24.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Valid reports whether a client-supplied id is safe to log and forward:
// 1 to 128 characters from [A-Za-z0-9._:-]. Anything else (spaces, quotes,
// control characters) could forge or break log lines.
func Valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := range len(id) {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// NewContext returns a copy of ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the id in ctx, or "" if there is none.
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(contextKey{}).(string)
	return id
}
