package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	keys := NewKeySet([]string{"sk-alpha", "  sk-beta  ", ""})
	if keys.Len() != 2 {
		t.Fatalf("Len = %d, want 2 (blank dropped, spaces trimmed)", keys.Len())
	}
	tests := []struct {
		key  string
		want bool
	}{
		{"sk-alpha", true},
		{"sk-beta", true},
		{"sk-alph", false},
		{"sk-alphaa", false},
		{"", false},
		{"SK-ALPHA", false},
	}
	for _, tt := range tests {
		id, ok := keys.Verify(tt.key)
		if ok != tt.want {
			t.Errorf("Verify(%q) = %v, want %v", tt.key, ok, tt.want)
		}
		if ok && (id == "" || strings.Contains(id, tt.key)) {
			t.Errorf("Verify(%q) id = %q: want a non-empty id that does not reveal the key", tt.key, id)
		}
	}
	if a, _ := keys.Verify("sk-alpha"); a == KeyID("sk-beta") {
		t.Error("two keys share an id")
	}
}

func TestEmptySetDisablesAuth(t *testing.T) {
	keys := NewKeySet(nil)
	if keys.Enabled() {
		t.Error("an empty key set is enabled")
	}
	if _, ok := keys.Verify("anything"); ok {
		t.Error("an empty key set accepted a key")
	}
}

func TestLoadFromFileAndEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	content := "# team keys\nsk-file-1\n\n  sk-file-2  \n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := Load(path, []string{"sk-env"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sk-file-1", "sk-file-2", "sk-env"} {
		if _, ok := keys.Verify(k); !ok {
			t.Errorf("key %q not loaded", k)
		}
	}
	if _, ok := keys.Verify("# team keys"); ok {
		t.Error("a comment line was loaded as a key")
	}
}

func TestLoadRejectsMissingOrEmptyFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("missing key file accepted")
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# nothing\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty, nil); err == nil {
		t.Error("a key file without keys accepted: it would leave the API open")
	}
}
