// Package auth checks the optional API keys of the public API.
//
// Keys are kept only as SHA-256 digests and a presented key is compared by
// digest in constant time: comparing fixed-size digests means neither the
// content nor the length of a configured key leaks through response timing.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// KeySet is the set of accepted API keys. An empty set disables auth. It
// is safe for concurrent use; Replace (see WatchFile) swaps the keys while
// requests are being verified.
type KeySet struct {
	digests atomic.Pointer[[][sha256.Size]byte]
}

// NewKeySet builds a set from plain keys. Surrounding whitespace is trimmed
// and empty keys are dropped.
func NewKeySet(keys []string) *KeySet {
	s := &KeySet{}
	s.Replace(keys)
	return s
}

// Replace makes keys the accepted set, at once for every later request.
func (s *KeySet) Replace(keys []string) {
	digests := make([][sha256.Size]byte, 0, len(keys))
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			digests = append(digests, sha256.Sum256([]byte(k)))
		}
	}
	s.digests.Store(&digests)
}

func (s *KeySet) current() [][sha256.Size]byte { return *s.digests.Load() }

// holds reports whether the set is exactly keys, in order.
func (s *KeySet) holds(keys []string) bool {
	return slices.Equal(NewKeySet(keys).current(), s.current())
}

// Load builds a set from a key file (may be empty: none) and keys given
// directly (from the environment). The file holds one key per line; blank
// lines and lines starting with # are ignored.
func Load(path string, keys []string) (*KeySet, error) {
	all := append([]string(nil), keys...)
	if path != "" {
		fileKeys, err := readKeyFile(path)
		if err != nil {
			return nil, err
		}
		all = append(all, fileKeys...)
	}
	return NewKeySet(all), nil
}

func readKeyFile(path string) ([]string, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read api key file: %w", err)
	}
	return parseKeyFile(path, content)
}

func parseKeyFile(path string, content []byte) ([]string, error) {
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read api key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		// An operator who points at a key file means to turn auth on; an
		// empty file silently leaving the API open would be a nasty surprise.
		return nil, fmt.Errorf("api key file %s holds no keys", path)
	}
	return keys, nil
}

// Enabled reports whether requests must present a key.
func (s *KeySet) Enabled() bool { return len(s.current()) > 0 }

// Len returns the number of configured keys.
func (s *KeySet) Len() int { return len(s.current()) }

// Verify reports whether key is one of the set, and if so returns a short
// identifier of it (a digest prefix) that is safe to log and to key rate
// limits by. It compares against every configured key, so the time taken
// does not depend on which key matched.
func (s *KeySet) Verify(key string) (id string, ok bool) {
	if key == "" {
		return "", false
	}
	presented := sha256.Sum256([]byte(key))
	match := 0
	for _, d := range s.current() {
		match |= subtle.ConstantTimeCompare(presented[:], d[:])
	}
	if match != 1 {
		return "", false
	}
	return KeyID(key), true
}

// KeyID returns the loggable identifier of a key: the first 8 bytes of its
// SHA-256 in hex. It identifies a key among the configured ones without
// revealing it.
func KeyID(key string) string {
	d := sha256.Sum256([]byte(key))
	return "key-" + hex.EncodeToString(d[:8])
}
