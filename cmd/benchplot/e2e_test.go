package main

import (
	"encoding/xml"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ESection renders the end-to-end section from testdata/e2e
// (three rounds, ratios known) and checks its figures and the plot.
func TestE2ESection(t *testing.T) {
	rep, err := loadE2E(filepath.Join("testdata", "e2e"))
	if err != nil || rep == nil {
		t.Fatalf("loadE2E: %v, %v", rep, err)
	}
	md := markdown(&results{e2e: rep, e2eSVG: "bench/e2e.svg"})
	for _, want := range []string{
		"## Delivery through real Postfix (issue 18 §4)",
		"| none | 2.0 [1.5–2.0] | 0.50 | 100 | 4.00 |",
		"| goscache | 4.2 [3.8–5.5] | 1.05 | 24 | 0.96 |",
		"| goscache messages/s ≥ scache's, within the noise | 1.05× (0.95–1.10) | met |",
		"| goscache SMTP sessions ≤ scache's, within the noise | 0.96× (0.96–0.96) | met |",
		"| both far ahead of no cache (none/scache messages/s) | 0.50× (0.30–0.50) | met |",
		"![messages per second and SMTP sessions, each way, every round](bench/e2e.svg)",
		"**Load average 30.0 30.0 30.0 at the start, 31.0 30.0 30.0 at the end**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q", want)
		}
	}
	svg := plotE2E(rep)
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("plot is not well-formed XML: %v", err)
		}
	}
	if n := strings.Count(svg, "<circle"); n != 2*len(rep.Runs) {
		t.Errorf("plot has %d dots, want one per run and panel (%d)", n, 2*len(rep.Runs))
	}
}

func TestE2EMissing(t *testing.T) {
	rep, err := loadE2E(t.TempDir())
	if rep != nil || err != nil {
		t.Errorf("loadE2E(empty dir) = %v, %v; want nil, nil", rep, err)
	}
}

func TestLoadAbove(t *testing.T) {
	for _, tc := range []struct {
		loads string
		cores int
		want  bool
	}{
		{"0.21 1.33 1.48", 2, false},
		{"2.00 2.00 2.00", 2, false},
		{"35.38 42.94 43.77", 2, true},
		{"0.5 0.5 2.01", 2, true},
		{"", 2, true},
		{"x 1 1", 2, true},
		{"1 1 1", 0, true},
	} {
		if got := loadAbove(tc.loads, tc.cores); got != tc.want {
			t.Errorf("loadAbove(%q, %d) = %v, want %v", tc.loads, tc.cores, got, tc.want)
		}
	}
}
