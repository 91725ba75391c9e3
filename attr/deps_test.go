package attr_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps attr free of everything but the standard library
// (docs/contributing.md, "Layout and boundaries").
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/goscache/goscache/attr" {
			t.Errorf("attr depends on %s; it may import only the standard library", p)
		}
	}
}
