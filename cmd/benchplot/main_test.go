package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestRun_golden renders the recorded results in testdata/results and
// compares the markdown and the SVG with the golden files.
func TestRun_golden(t *testing.T) {
	dir := t.TempDir()
	out, svg := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "bench", "throughput.svg")
	os.Mkdir(filepath.Dir(svg), 0o755)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"-dir", "testdata/results", "-out", out, "-svg", svg, "-notes", "testdata/notes.md"}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	for _, f := range []struct{ got, golden string }{
		{out, "testdata/BENCHMARKS.golden.md"},
		{svg, "testdata/throughput.golden.svg"},
	} {
		got, err := os.ReadFile(f.got)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(f.golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(f.golden)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", f.golden, diff)
		}
	}
	md, _ := os.ReadFile(out)
	for _, want := range []string{
		"![cycles per second against concurrent clients](bench/throughput.svg)",
		"| fresh labels, 1 client: cycle rate >= scache's | goscache/scache = ",
		"| reuse, 1 client: server CPU per cycle <= scache's | goscache/scache CPU = ",
		"| reuse, 1 client: cycle rate >= 0.9x the floor's | goscache/floor = ",
		"| reuse, 16 clients: cycle rate >= 0.9x the floor's | goscache/floor = ",
		"| reuse, 1 client: server CPU per cycle <= 1.15x the floor's | goscache/floor CPU = ",
		"| open loop, reuse mode, 16 clients, 276 cycles/s for every server: find_dest hit p99 <= scache's |",
		"| open loop, reuse mode, 16 clients, 50 % of each server's own capacity: find_dest hit p99 <= scache's |",
		"| open loop, reuse mode, 16 clients, 80 % of each server's own capacity: find_dest hit p99 <= scache's |",
		"| open loop, fresh labels, 16 clients, 238 cycles/s for every server: find_dest hit p99 <= scache's |",
		"| open loop, fresh labels, 16 clients, 50 % of each server's own capacity: find_dest hit p99 <= scache's |",
		"| open loop, fresh labels, 16 clients, 80 % of each server's own capacity: find_dest hit p99 <= scache's |",
		"| 50 % of own | goscache | 1026 | 0.50 |",
		"## Reuse mode\n",
		"## Open loop, reuse mode\n",
		"## Open loop, fresh labels\n",
		"| load | 1-minute load average during the run: ",
		"The floor (`scachebench -floor-master`, cmd/scachebench/floor.go) is the least a server can do",
		"| (not a target) fresh labels, 16 clients, closed loop: request p99, at ",
		"| (not a target) Go heap per cached connection |",
		"## Analysis\n\nNotes appended verbatim.\n",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

func TestRun_errors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"noDir", nil, "-dir is required"},
		{"emptyDir", []string{"-dir", t.TempDir()}, "no results"},
		{"badJSON", []string{"-dir", badDir(t)}, "sweep.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func badDir(t *testing.T) string {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "sweep.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLoadMachine_create checks that a missing machine.json is described
// from this host and written.
func TestLoadMachine_create(t *testing.T) {
	path := filepath.Join(t.TempDir(), "machine.json")
	m, err := loadMachine(path, "3.7.11", "abc123")
	if err != nil {
		t.Fatal(err)
	}
	if m.Postfix != "3.7.11" || m.Commit != "abc123" || m.Cores < 1 || m.GoVersion == "" {
		t.Errorf("machine = %+v", m)
	}
	again, err := loadMachine(path, "other", "other")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, again); diff != "" {
		t.Errorf("reloaded machine mismatch (-want +got):\n%s", diff)
	}
}

func TestNewSpread(t *testing.T) {
	tests := []struct {
		in   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{3}, spread{3, 3, 3, 1}},
		{[]float64{5, 1, 3}, spread{3, 1, 5, 3}},
		{[]float64{4, 1, 3, 2}, spread{2.5, 1, 4, 4}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, newSpread(tt.in)); diff != "" {
			t.Errorf("newSpread(%v) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{0, 1}, {0.3, 0.5}, {1, 1}, {1.1, 2}, {2600, 5000}, {4000, 5000}, {5001, 10000},
	}
	for _, tt := range tests {
		if got := niceStep(tt.in); got != tt.want {
			t.Errorf("niceStep(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRatios(t *testing.T) {
	runs := []benchRun{
		{Target: "goscache", Round: 1, Clients: 1, CyclesPerSec: 200},
		{Target: "scache", Round: 1, Clients: 1, CyclesPerSec: 100},
		{Target: "goscache", Round: 2, Clients: 1, CyclesPerSec: 300},
		{Target: "scache", Round: 2, Clients: 1, CyclesPerSec: 100},
		{Target: "goscache", Round: 3, Clients: 1, CyclesPerSec: 300}, // no partner: left out
	}
	ix := index(runs, func(r benchRun) int { return r.Clients })
	got := newSpread(ix.ratios(1, "goscache", "scache", cps))
	if diff := cmp.Diff(spread{2.5, 2, 3, 2}, got); diff != "" {
		t.Errorf("ratios mismatch (-want +got):\n%s", diff)
	}
}

// TestRun_capacity checks -capacity: the open-loop rates bench-compare
// offers, from the reuse run's results.
func TestRun_capacity(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"one target", []string{"-of", "scache", "-fraction", "0.8"}, "884\n"},
		{"the lowest of two", []string{"-of", "goscache,scache", "-fraction", "0.25"}, "276\n"},
		{"each its own", []string{"-of", "scache,goscache,floor", "-fraction", "0.5", "-each"}, "scache=553,goscache=1026,floor=2681\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			args := append([]string{"-capacity", "testdata/results/reuse.json", "-clients", "16"}, tt.args...)
			if err := run(t.Context(), args, &stdout, &stderr); err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			if got := stdout.String(); got != tt.want {
				t.Errorf("-capacity %q printed %q, want %q (medians at 16 clients times the fraction)", tt.args, got, tt.want)
			}
		})
	}
	var stdout, stderr strings.Builder
	for _, args := range [][]string{{"-clients", "3"}, {"-of", "scache,nobody"}} {
		if err := run(t.Context(), append([]string{"-capacity", "testdata/results/reuse.json"}, args...), &stdout, &stderr); err == nil {
			t.Errorf("-capacity %q: no error", args)
		}
	}
}
