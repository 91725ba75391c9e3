package mastercompat

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the package graph of STYLE.md §1 true: mastercompat knows
// nothing about scache requests or the attribute codec.
func TestDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/goscache/goscache/scache",
		"github.com/goscache/goscache/attr",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("mastercompat depends on %s", dep)
			}
		}
	}
}
