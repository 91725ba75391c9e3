package scache_test

import (
	"testing"

	"github.com/goscache/goscache/scache"
)

func TestAnnounces(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    bool
	}{
		{"3.5.25", false},
		{"3.5.0", false},
		{"3.4.14", false},
		{"2.11.11", false},
		{"3.6-20200906", false}, // the last snapshot before the announcement
		{"3.6-20200920", true},  // the snapshot that added it
		{"3.6-20210101", true},
		{"3.6.0", true},
		{"3.6.20", true},
		{"3.7.11", true},
		{"3.10.13", true},
		{"3.11.7", true},
		{"3.12-20260821", true},
		{"4.0.0", true},
		{"", true},
		{"unknown", true},
		{"3.x", true},
		{"x.5", true},
	} {
		if got := scache.Announces(tc.version); got != tc.want {
			t.Errorf("Announces(%q) = %v, want %v", tc.version, got, tc.want)
		}
	}
}
