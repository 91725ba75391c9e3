package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestScacheDefaults_postconf checks scache's own parameter defaults
// against the installed Postfix's postconf -d, when there is one.
func TestScacheDefaults_postconf(t *testing.T) {
	postconf, err := exec.LookPath("postconf")
	if err != nil {
		t.Skip("postconf(1) not installed: skipping the cross-check against Postfix")
	}
	for name, want := range scacheDefaults {
		out, err := exec.Command(postconf, "-dh", name).Output()
		if err != nil {
			t.Fatalf("postconf -dh %s: %v", name, err)
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != want {
			t.Errorf("postconf -dh %s = %q, scacheDefaults has %q", name, got, want)
		}
	}
}
