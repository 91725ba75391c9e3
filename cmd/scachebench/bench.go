package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goscache/goscache/cmd/internal/benchresults"
	"github.com/goscache/goscache/cmd/internal/secflag"
)

// synopsis is what follows "scachebench" in the usage line.
const synopsis = "[-socket PATH] [-clients 1,4,16,64] [-labels fresh|reuse] [-rate N|NAME=N,...] [-duration D] [-target NAME=PATH ...] [-pid NAME=PID ...] [-scale 10,1000,...] [-json] | -floor-serve PATH | -floor-master ARGV0 [master's arguments]"

// The -json schema, shared with cmd/benchplot.
type (
	benchTarget = benchresults.Target
	benchReport = benchresults.Report
	runResult   = benchresults.Run
	latStats    = benchresults.Latency
	memSample   = benchresults.MemSample
	heapSample  = benchresults.HeapSample
)

// targetList is a repeatable -target NAME=PATH flag.
type targetList []benchTarget

func (t *targetList) String() string {
	var s []string
	for _, x := range *t {
		s = append(s, x.Name+"="+x.Socket)
	}
	return strings.Join(s, ",")
}

func (t *targetList) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return errors.New("want NAME=PATH")
	}
	*t = append(*t, benchTarget{Name: name, Socket: path})
	return nil
}

// pidList is a repeatable -pid NAME=PID flag naming the server process of
// a target, whose VmRSS the scale run samples.
type pidList map[string]int

func (p pidList) String() string { return fmt.Sprint(map[string]int(p)) }

func (p pidList) Set(v string) error {
	name, s, ok := strings.Cut(v, "=")
	pid, err := strconv.Atoi(s)
	if !ok || name == "" || err != nil || pid <= 0 {
		return errors.New("want NAME=PID")
	}
	p[name] = pid
	return nil
}

// rateFlag is -rate: one offered load for every target ("2000"), or one
// per target ("scache=1500,goscache=6000,floor=7000"), so that each
// server can be offered the same share of its own capacity.
type rateFlag struct {
	all    float64            // for every target without a rate of its own
	byName map[string]float64 // NAME=N
}

func (r *rateFlag) String() string {
	if r == nil || len(r.byName) == 0 {
		if r == nil || r.all == 0 {
			return "0"
		}
		return strconv.FormatFloat(r.all, 'f', -1, 64)
	}
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = n + "=" + strconv.FormatFloat(r.byName[n], 'f', -1, 64)
	}
	return strings.Join(names, ",")
}

func (r *rateFlag) Set(v string) error {
	*r = rateFlag{}
	if !strings.Contains(v, "=") {
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || n < 0 {
			return errors.New("want a rate in cycles/s, not negative, or a list NAME=RATE,NAME=RATE")
		}
		r.all = n
		return nil
	}
	r.byName = map[string]float64{}
	for _, f := range strings.Split(v, ",") {
		name, s, ok := strings.Cut(strings.TrimSpace(f), "=")
		n, err := strconv.ParseFloat(s, 64)
		if !ok || name == "" || err != nil || n <= 0 {
			return fmt.Errorf("bad NAME=RATE %q (RATE in cycles/s, positive)", f)
		}
		r.byName[name] = n
	}
	return nil
}

// of returns the rate offered to target name: its own, or the one for all.
func (r rateFlag) of(name string) float64 {
	if n, ok := r.byName[name]; ok {
		return n
	}
	return r.all
}

// intList parses "1,4,16,64".
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// benchConfig is what one bench invocation does.
type benchConfig struct {
	targets    []benchTarget
	clients    []int
	rounds     int
	warmup     time.Duration
	duration   time.Duration
	cycles     int // per client; 0 = run for duration
	labels     string
	dests      int
	rate       rateFlag
	ttl        time.Duration // whole seconds
	timeout    time.Duration
	scale      []int
	scaleTTL   time.Duration // whole seconds
	scaleFill  int           // concurrent fill connections
	heap       []int
	pids       pidList
	checkFDs   bool // fail if this process has more descriptors open at the end
	memProfile string
}

// runBench parses the command line and runs the bench, or serves the
// floor.
func runBench(e *env, args []string) error {
	fs := e.newFlags()
	var (
		targets   targetList
		pids      = pidList{}
		clients   = fs.String("clients", "1,4,16,64", "comma-separated `list` of concurrent client counts (the sweep)")
		rounds    = fs.Int("rounds", 1, "repeat the sweep this many `times`, targets interleaved")
		warmup    = fs.Duration("warmup", time.Second, "warm-up before each measurement (not counted)")
		duration  = fs.Duration("duration", 5*time.Second, "measurement time per run")
		cycles    = fs.Int("cycles", 0, "measure this many cycles per client instead of -duration")
		labels    = fs.String("labels", labelsFresh, "`mode` of the sweep's labels: fresh (new labels every cycle, the cache grows) or reuse (each client cycles through -dests destinations, the cache stays small)")
		dests     = fs.Int("dests", 4, "with -labels reuse: destinations per client")
		asJSON    = fs.Bool("json", false, "write the results as JSON")
		scale     = fs.String("scale", "", "scale run: comma-separated `list` of cached-connection counts to fill each target to, measuring 1 client at each")
		scaleFill = fs.Int("scale-fill", 4, "concurrent connections used to fill the cache in -scale")
		heap      = fs.String("heap", "", "measure Go heap per cached connection of an in-process goscache at these comma-separated counts")
		floor     = fs.String("floor-serve", "", "serve the floor (no cache logic) on this socket `path` until interrupted")
		floorStat = fs.Bool("floor-status", true, "with -floor-serve: write a 12-byte status record to a pipe when requests start and stop, as a master(8) child does")
		floorMstr = fs.Bool("floor-master", false, "serve the floor as a master(8) child (listener on fd 6, status records to fd 5) until master goes away; it must be the first argument, and what follows it is master's command line, argv[0] included (a wrapper script: exec scachebench -floor-master \"$0\" \"$@\")")
		cpuprof   = fs.String("cpuprofile", "", "write a CPU profile of this process to `file`")
		memprof   = fs.String("memprofile", "", "write a heap profile of this process to `file` at the end (with -heap: while the cache is full)")
		checkFDs  = fs.Bool("check-fds", true, "fail if descriptors are left open at the end (turn off when a server in this process keeps cached connections)")
	)
	var ttl, scaleTTL time.Duration
	var rate rateFlag
	fs.Var(&rate, "rate", "open loop: offered load in cycles per second over all clients, each client on a fixed schedule, latency counted from the scheduled start; `N` for every target or NAME=N,... per target (0, or a target not named: closed loop, each client as fast as it can)")
	secflag.Var(fs, &ttl, "ttl", 2*time.Second, "ttl sent with save requests: a duration or bare seconds, whole seconds as the protocol carries them (smtp(8) sends 2)")
	secflag.Var(fs, &scaleTTL, "scale-ttl", time.Hour, "ttl of the connections cached by -scale: a duration or bare seconds, whole seconds (raise the server's connection_cache_ttl_limit to match)")
	fs.Var(&targets, "target", "server under test as `NAME=PATH` (repeatable; default: the global -socket, named \"server\"; PATH \"inproc\" starts goscache's Server in this process)")
	fs.Var(pids, "pid", "`NAME=PID` of a target's server process, for its CPU time per cycle and VmRSS in -scale (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cpuprof != "" {
		stop, err := startCPUProfile(*cpuprof)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *memprof != "" {
		runtime.MemProfileRate = 1 // every allocation, for an exact per-connection account
	}
	if *floorMstr {
		fs.Usage()
		return &usageError{msg: "-floor-master must be the first argument (master's command line follows it)", printed: true}
	}
	if *floor != "" {
		return serveFloorPath(e.ctx, *floor, *floorStat, e.stderr)
	}
	cfg := benchConfig{
		targets: targets, rounds: *rounds, warmup: *warmup, duration: *duration, cycles: *cycles,
		labels: *labels, dests: *dests, rate: rate,
		ttl: ttl, timeout: e.timeout, scaleTTL: scaleTTL, scaleFill: *scaleFill, pids: pids,
		checkFDs: *checkFDs, memProfile: *memprof,
	}
	if err := cfg.setLists(*clients, *scale, *heap); err != nil {
		return err
	}
	if len(cfg.targets) == 0 && len(cfg.heap) == 0 {
		if e.socket == "" {
			fs.Usage()
			return &usageError{msg: "no server to measure: give -socket PATH or -target NAME=PATH", printed: true}
		}
		cfg.targets = []benchTarget{{Name: "server", Socket: e.socket}}
	}
	for name := range cfg.rate.byName {
		if !slices.ContainsFunc(cfg.targets, func(t benchTarget) bool { return t.Name == name }) {
			return &usageError{msg: fmt.Sprintf("-rate names %q, which is no -target", name)}
		}
	}
	progress := e.stderr
	if !*asJSON {
		progress = io.Discard
	}
	rep, err := bench(e.ctx, cfg, progress)
	if rep != nil {
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printReport(e.stdout, rep)
		}
	}
	return err
}

// wholeSeconds reports whether d is a ttl the protocol can carry as it is:
// a positive whole number of seconds.
func wholeSeconds(d time.Duration) bool {
	return d >= time.Second && d%time.Second == 0
}

// startCPUProfile writes a CPU profile of this process to path until
// stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// setLists parses -clients, -scale and -heap into cfg and checks the
// other numbers.
func (cfg *benchConfig) setLists(clients, scale, heap string) error {
	var err error
	if clients != "" { // -clients "" skips the sweep
		if cfg.clients, err = intList(clients); err != nil {
			return &usageError{msg: "-clients: " + err.Error()}
		}
	}
	if scale != "" {
		if cfg.scale, err = intList(scale); err != nil {
			return &usageError{msg: "-scale: " + err.Error()}
		}
	}
	if heap != "" {
		if cfg.heap, err = intList(heap); err != nil {
			return &usageError{msg: "-heap: " + err.Error()}
		}
	}
	if !wholeSeconds(cfg.ttl) || !wholeSeconds(cfg.scaleTTL) {
		return &usageError{msg: "-ttl and -scale-ttl must be whole seconds, at least 1s"}
	}
	if cfg.rounds < 1 || cfg.scaleFill < 1 || cfg.cycles < 0 || cfg.dests < 1 {
		return &usageError{msg: "-rounds, -dests and -scale-fill must be positive, -cycles not negative"}
	}
	if cfg.labels != labelsFresh && cfg.labels != labelsReuse {
		return &usageError{msg: "-labels must be fresh or reuse"}
	}
	return nil
}

// bench runs everything cfg asks for and returns the report; on error the
// report holds what was measured before it.
func bench(ctx context.Context, cfg benchConfig, progress io.Writer) (*benchReport, error) {
	raiseNoFile(cfg)
	before := openFDs()
	rep := &benchReport{
		Started: time.Now().UTC(), GoVersion: runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
	}
	var err error
	func() {
		var stop func()
		var targets []benchTarget
		targets, stop, err = startInproc(ctx, cfg.targets, cfg.ttl, cfg.scaleTTL)
		if err != nil {
			return
		}
		defer stop()
		for i := range targets {
			targets[i].PID = cfg.pids[targets[i].Name]
		}
		rep.Targets = targets
		if err = runSweep(ctx, cfg, targets, rep, progress); err != nil {
			return
		}
		if len(cfg.scale) > 0 {
			err = runScale(ctx, cfg, targets, rep, progress)
		}
	}()
	if err == nil && len(cfg.heap) > 0 {
		rep.Heap, err = measureHeap(ctx, cfg, progress)
	}
	if before != nil && cfg.checkFDs {
		if leaked := leakedFDs(before); len(leaked) > 0 {
			rep.FDsLeaked = len(leaked)
			if err == nil {
				err = fmt.Errorf("bench: %d descriptors leaked: %s", rep.FDsLeaked, strings.Join(leaked, ", "))
			}
		}
	}
	return rep, err
}

// runSweep runs every client count against every target, cfg.rounds
// times, rotating the order of the targets from one run to the next so
// that no server always goes first.
func runSweep(ctx context.Context, cfg benchConfig, targets []benchTarget, rep *benchReport, progress io.Writer) error {
	k := 0
	for round := 1; round <= cfg.rounds; round++ {
		for _, n := range cfg.clients {
			for j := range targets {
				t := targets[(j+k)%len(targets)]
				res, err := runLoad(ctx, loadSpec{
					target: t, clients: n, warmup: cfg.warmup, duration: cfg.duration,
					cycles: cfg.cycles, ttl: cfg.ttl, timeout: cfg.timeout,
					labels: cfg.labels, dests: cfg.dests, rate: cfg.rate.of(t.Name),
				})
				res.Round = round
				rep.Runs = append(rep.Runs, res)
				if err != nil {
					return err
				}
				fmt.Fprintf(progress, "round %d %-10s clients=%-3d %9.0f cycles/s  server CPU %6.1f µs/cycle  errors=%d\n", round, t.Name, n, res.CyclesPerSec, res.CPUPerCycle, res.Errors)
			}
			k++
		}
	}
	return nil
}

// printReport writes rep as tables.
func printReport(w io.Writer, rep *benchReport) {
	if len(rep.Runs) > 0 {
		fmt.Fprintf(w, "%-10s %5s %7s %10s %10s %10s %7s", "target", "round", "clients", "cycles/s", "requests/s", "cpu/cycle", "errors")
		for _, k := range reqKinds {
			fmt.Fprintf(w, "  %-24s", k.String()+" p50/p99/max")
		}
		fmt.Fprintln(w)
		for _, r := range rep.Runs {
			printRun(w, r, r.Clients)
		}
	}
	if len(rep.Scale) > 0 {
		fmt.Fprintf(w, "\nscale (1 client):\n%-10s %5s %7s %10s %10s %10s %7s\n", "target", "round", "cached", "cycles/s", "requests/s", "cpu/cycle", "errors")
		for _, r := range rep.Scale {
			printRun(w, r, r.Cached)
		}
	}
	if len(rep.Memory) > 0 {
		fmt.Fprintf(w, "\nresident memory:\n%-10s %8s %10s\n", "target", "cached", "VmRSS kB")
		for _, m := range rep.Memory {
			fmt.Fprintf(w, "%-10s %8d %10d\n", m.Target, m.Cached, m.RSSKB)
		}
	}
	if len(rep.Heap) > 0 {
		fmt.Fprintf(w, "\nGo heap of an in-process goscache:\n%8s %12s %10s %10s\n", "cached", "heap bytes", "bytes/conn", "payload")
		for _, h := range rep.Heap {
			fmt.Fprintf(w, "%8d %12d %10.1f %10.1f\n", h.Cached, h.HeapBytes, h.BytesPerConn, h.PayloadPerConn)
		}
	}
	if rep.FDsLeaked > 0 {
		fmt.Fprintf(w, "\nWARNING: %d descriptors leaked\n", rep.FDsLeaked)
	}
}

func printRun(w io.Writer, r runResult, n int) {
	cpu := "-"
	if r.CPUPerCycle > 0 {
		cpu = fmtDur(int64(r.CPUPerCycle * 1e3))
	}
	fmt.Fprintf(w, "%-10s %5d %7d %10.0f %10.0f %10s %7d", r.Target, r.Round, n, r.CyclesPerSec, r.RequestsPerSec, cpu, r.Errors)
	for _, k := range reqKinds {
		l := r.Latency[k.String()]
		fmt.Fprintf(w, "  %-24s", fmt.Sprintf("%s/%s/%s", fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.Max)))
	}
	fmt.Fprintln(w)
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(w, "    error: %s\n", s)
	}
}

// fmtDur formats nanoseconds compactly: 12.3µs, 1.20ms.
func fmtDur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(ns, 10) + "ns"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(ns)/1e3, 'f', 1, 64) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(ns)/1e6, 'f', 2, 64) + "ms"
	}
	return d.Round(time.Millisecond).String()
}
