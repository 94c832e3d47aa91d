package auth

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const reloadInterval = 20 * time.Millisecond

// Generous: the watcher polls every 20 ms, the bound only absorbs a slow
// machine.
const reloadBound = 5 * time.Second

func watch(t *testing.T, keys *KeySet, path string, envKeys ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		keys.WatchFile(ctx, path, envKeys, reloadInterval, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitUntil polls cond until it holds or reloadBound passes, and returns how
// long it took.
func waitUntil(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > reloadBound {
			t.Fatalf("%s: not within %v", what, reloadBound)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func accepts(keys *KeySet, key string) bool { _, ok := keys.Verify(key); return ok }

func TestRewrittenKeyFileIsReloaded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	writeFile(t, path, "sk-old\nsk-kept\n")
	keys, err := Load(path, []string{"sk-env"})
	if err != nil {
		t.Fatal(err)
	}
	watch(t, keys, path, "sk-env")

	writeFile(t, path, "sk-new\nsk-kept\n")
	took := waitUntil(t, "the removed key is refused", func() bool { return !accepts(keys, "sk-old") })
	t.Logf("rotation applied within %v", took)
	for _, k := range []string{"sk-new", "sk-kept", "sk-env"} {
		if !accepts(keys, k) {
			t.Errorf("%s refused after the reload", k)
		}
	}
}

func TestBrokenKeyFileKeepsTheCurrentKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	writeFile(t, path, "sk-a\n")
	keys, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	watch(t, keys, path)

	// Emptied (a half-written file), then gone (a broken mount): neither
	// opens the API nor locks clients out.
	writeFile(t, path, "# no keys\n")
	time.Sleep(10 * reloadInterval)
	if !keys.Enabled() || !accepts(keys, "sk-a") {
		t.Fatal("an empty key file replaced the keys")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * reloadInterval)
	if !accepts(keys, "sk-a") {
		t.Fatal("a missing key file replaced the keys")
	}
	// Fixed again: reloaded.
	writeFile(t, path, "sk-b\n")
	waitUntil(t, "the fixed file is loaded", func() bool { return accepts(keys, "sk-b") && !accepts(keys, "sk-a") })
}

// TestSecretVolumeSymlinkSwapIsReloaded updates the key file the way the
// kubelet updates a Secret volume: the files live in a timestamped
// directory, "..data" is a symlink to it, the key file a symlink through
// "..data"; an update writes a new directory and renames a new "..data"
// symlink over the old one (atomic), then deletes the old directory.
func TestSecretVolumeSymlinkSwapIsReloaded(t *testing.T) {
	vol := t.TempDir()
	mkdirWith := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(vol, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(vol, name, "api-keys"), content)
	}
	mkdirWith("..2026_01_01_00_00_00.1", "sk-old\n")
	must(t, os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(vol, "..data")))
	path := filepath.Join(vol, "api-keys")
	must(t, os.Symlink(filepath.Join("..data", "api-keys"), path))

	keys, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	watch(t, keys, path)

	mkdirWith("..2026_01_01_00_05_00.2", "sk-new\n")
	must(t, os.Symlink("..2026_01_01_00_05_00.2", filepath.Join(vol, "..data_tmp")))
	must(t, os.Rename(filepath.Join(vol, "..data_tmp"), filepath.Join(vol, "..data")))
	must(t, os.RemoveAll(filepath.Join(vol, "..2026_01_01_00_00_00.1")))

	took := waitUntil(t, "the swapped Secret is loaded", func() bool { return accepts(keys, "sk-new") && !accepts(keys, "sk-old") })
	t.Logf("symlink swap applied within %v", took)
}

func TestWatchFileStopsWithItsContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	writeFile(t, path, "sk-a\n")
	keys := NewKeySet([]string{"sk-a"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		keys.WatchFile(ctx, path, nil, reloadInterval, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(reloadBound):
		t.Fatal("WatchFile kept running after its context ended")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(content), 0o600))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
