package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goscache/goscache/cmd/internal/benchresults"
)

// The input: what "scachebench -json" writes.
type (
	latency     = benchresults.Latency
	benchRun    = benchresults.Run
	memSample   = benchresults.MemSample
	benchReport = benchresults.Report
)

// machine describes where the results were measured.
type machine struct {
	Date     string `json:"date"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel"`
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryMB int    `json:"memory_mb"`
	Postfix  string `json:"postfix"`
	Commit   string `json:"commit"`
	FDLimit  string `json:"fd_limit,omitempty"`
	// Load is how busy the machine was during the run (bench-compare
	// samples the load average: other work may share the cores).
	Load      string `json:"load,omitempty"`
	GoVersion string `json:"go_version"`
}

// results is everything one report is made of.
type results struct {
	sweep, scale, heap *benchReport
	reuse              *benchReport // -labels reuse sweep
	opens              []openRun    // the open-loop points that were run
	machine            machine
	command            string
	svgName            string
	notes              string     // hand-written analysis, appended
	e2e                *e2eReport // make bench-e2e (e2e.go)
	e2eSVG             string
}

// openPoint is one load point of the open loop (issue 18): the share of
// each server's own closed-loop capacity it is offered, or one fixed rate
// for all.
type openPoint struct {
	file   string  // results file in the results directory
	labels string  // labelsReuse or labelsFresh
	own    float64 // share of each server's own capacity; 0: a fixed rate
}

// openPoints are the open-loop results files bench-compare writes, in the
// order the report shows them.
var openPoints = []openPoint{
	{"open-reuse-fixed.json", "reuse", 0},
	{"open-reuse-own50.json", "reuse", 0.5},
	{"open-reuse-own80.json", "reuse", 0.8},
	{"open-fresh-fixed.json", "fresh", 0},
	{"open-fresh-own50.json", "fresh", 0.5},
	{"open-fresh-own80.json", "fresh", 0.8},
}

// openRun is the results of one open-loop point.
type openRun struct {
	openPoint
	rep *benchReport
}

// The target names bench-compare uses.
const (
	nameScache   = "scache"
	nameGoscache = "goscache"
	nameFloor    = "floor"
)

func loadResults(dir string) (*results, error) {
	r := &results{}
	loaded := 0
	for _, f := range []struct {
		name string
		dst  **benchReport
	}{{"sweep.json", &r.sweep}, {"scale.json", &r.scale}, {"heap.json", &r.heap}, {"reuse.json", &r.reuse}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var rep benchReport
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = &rep
		loaded++
	}
	for _, p := range openPoints {
		b, err := os.ReadFile(filepath.Join(dir, p.file))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var rep benchReport
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("%s: %w", p.file, err)
		}
		if len(rep.Runs) > 0 {
			r.opens = append(r.opens, openRun{p, &rep})
		}
		loaded++
	}
	e2e, err := loadE2E(dir)
	if err != nil {
		return nil, err
	}
	if r.e2e = e2e; e2e != nil {
		loaded++
	}
	if loaded == 0 {
		return nil, fmt.Errorf("no results in %s", dir)
	}
	return r, nil
}

// loadMachine reads path, or describes this host and writes it there.
func loadMachine(path, postfix, commit string) (machine, error) {
	var m machine
	b, err := os.ReadFile(path)
	if err == nil {
		return m, json.Unmarshal(b, &m)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	m = machine{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		OS:        osRelease(),
		Kernel:    readTrim("/proc/sys/kernel/osrelease"),
		CPU:       cpuModel(),
		Cores:     runtime.NumCPU(),
		MemoryMB:  memTotalMB(),
		Postfix:   postfix,
		Commit:    commit,
		FDLimit:   os.Getenv("BENCH_FD_LIMIT"),
		Load:      os.Getenv("BENCH_LOAD"),
		GoVersion: runtime.Version(),
	}
	b, err = json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	return m, os.WriteFile(path, append(b, '\n'), 0o644)
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func osRelease() string {
	return fieldOf("/etc/os-release", "PRETTY_NAME=", func(s string) string { return strings.Trim(s, `"`) })
}

func cpuModel() string {
	return fieldOf("/proc/cpuinfo", "model name", func(s string) string {
		_, v, _ := strings.Cut(s, ":")
		return strings.TrimSpace(v)
	})
}

func memTotalMB() int {
	v := fieldOf("/proc/meminfo", "MemTotal:", func(s string) string { return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "kB")) })
	n, _ := strconv.Atoi(v)
	return n / 1024
}

// fieldOf returns f(rest) for the first line of path starting with prefix.
func fieldOf(path, prefix string, f func(string) string) string {
	file, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer file.Close()
	s := bufio.NewScanner(file)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), prefix); ok {
			return f(rest)
		}
	}
	return "unknown"
}

// spread is the median and range of a set of measurements.
type spread struct {
	Median, Min, Max float64
	N                int
}

func newSpread(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// byRound indexes runs by level (clients or cached), round and target.
type byRound map[int]map[int]map[string]benchRun

func index(runs []benchRun, level func(benchRun) int) byRound {
	ix := byRound{}
	for _, r := range runs {
		l := level(r)
		if ix[l] == nil {
			ix[l] = map[int]map[string]benchRun{}
		}
		if ix[l][r.Round] == nil {
			ix[l][r.Round] = map[string]benchRun{}
		}
		ix[l][r.Round][r.Target] = r
	}
	return ix
}

// levels returns the sorted levels of ix.
func (ix byRound) levels() []int {
	var l []int
	for k := range ix {
		l = append(l, k)
	}
	slices.Sort(l)
	return l
}

// values collects f(run of target) over the rounds of a level.
func (ix byRound) values(level int, target string, f func(benchRun) float64) []float64 {
	var v []float64
	for _, rounds := range ix[level] {
		if r, ok := rounds[target]; ok {
			v = append(v, f(r))
		}
	}
	return v
}

// ratios collects f(run of a)/f(run of b) over the rounds of a level where
// both ran.
func (ix byRound) ratios(level int, a, b string, f func(benchRun) float64) []float64 {
	var v []float64
	for _, rounds := range ix[level] {
		ra, oka := rounds[a]
		rb, okb := rounds[b]
		if oka && okb && f(rb) != 0 {
			v = append(v, f(ra)/f(rb))
		}
	}
	return v
}

// The levels index groups runs by: the client count (sweeps, open loops)
// or the connections cached beforehand (scale runs).
func clientsLevel(r benchRun) int { return r.Clients }
func cachedLevel(r benchRun) int  { return r.Cached }

func cps(r benchRun) float64  { return r.CyclesPerSec }
func cpu(r benchRun) float64  { return r.CPUPerCycle }
func rps(r benchRun) float64  { return r.RequestsPerSec }
func rate(r benchRun) float64 { return r.Rate }

// lat returns a latency figure of kind in microseconds.
func lat(kind string, f func(latency) int64) func(benchRun) float64 {
	return func(r benchRun) float64 { return float64(f(r.Latency[kind])) / 1e3 }
}

func p50(l latency) int64  { return l.P50 }
func p99(l latency) int64  { return l.P99 }
func pmax(l latency) int64 { return l.Max }

// targetsOf lists the targets of runs in the order they first appear,
// scache, goscache and floor first.
func targetsOf(runs []benchRun) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range []string{nameScache, nameGoscache, nameFloor} {
		for _, r := range runs {
			if r.Target == n && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	for _, r := range runs {
		if !seen[r.Target] {
			seen[r.Target] = true
			out = append(out, r.Target)
		}
	}
	return out
}
