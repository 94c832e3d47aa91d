package testsupport

import (
	"os/exec"
	"strings"
	"testing"
)

// The shipped programs must not depend on a fake, directly or through a
// package they import: `go list -deps` walks exactly what the linker sees
// (test files are not part of it).
func TestBinariesDoNotLinkTestSupport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ../../cmd/...: %v\n%s", err, out)
	}
	const prefix = "github.com/tandem-inference/tandem/go-gateway/internal/testsupport"
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, prefix) {
			t.Errorf("a shipped binary depends on %s: only _test.go files may import test support", pkg)
		}
	}
	if !strings.Contains(string(out), "github.com/tandem-inference/tandem/go-gateway/internal/httpapi") {
		t.Fatalf("go list output does not look like the gateway's dependencies:\n%s", out)
	}
}
