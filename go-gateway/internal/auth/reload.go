package auth

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"time"
)

// WatchFile re-reads the key file every interval until ctx ends, and makes
// the keys in it (with envKeys) the accepted set whenever its content
// changes, so that a rotated key takes effect without a restart.
//
// It polls the content rather than watching for file events: a Kubernetes
// Secret volume is updated by writing a new directory and swapping the
// "..data" symlink, which inotify reports on the directory, not on the file
// path, and which some editors and tools imitate in other ways. Reading the
// path, symlinks followed, every few seconds sees every kind of update, and
// costs one small read.
//
// A file that cannot be read or holds no keys keeps the current keys and is
// logged as an error: a half-written or wrongly mounted file must never open
// the API or lock every client out.
func (s *KeySet) WatchFile(ctx context.Context, path string, envKeys []string, interval time.Duration, logger *slog.Logger) {
	// The first read is compared by keys, not bytes: the file may have
	// changed since Load read it.
	var last []byte
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		content, err := os.ReadFile(path)
		if err != nil {
			logger.Error("api key file unreadable; keeping the current keys", "path", path, "error", err)
			continue
		}
		if bytes.Equal(content, last) {
			continue
		}
		fileKeys, err := parseKeyFile(path, content)
		if err != nil {
			logger.Error("api key file rejected; keeping the current keys", "path", path, "error", err)
			continue
		}
		last = content
		all := append(append([]string(nil), envKeys...), fileKeys...)
		if s.holds(all) {
			continue
		}
		s.Replace(all)
		logger.Info("api keys reloaded", "path", path, "api_keys", s.Len())
	}
}
