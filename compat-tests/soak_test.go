//go:build compat

package compattest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/compat-tests/sink"
	"golang.org/x/sys/unix"
)

// The soak (make soak; docs/soak.md): real master(8) with Postfix's scache
// and, side by side, with goscache, the same relay-like mail through both
// for SOAK (a duration), while the events of a server's life fire at seeded
// random times. It runs only when SOAK is set.
var (
	flagSoak     = flag.Duration("compat.soak", envDuration("SOAK", 0), "run TestSoak for this long (0: skip); env SOAK")
	flagSoakSeed = flag.Uint64("compat.soak-seed", envUint("SOAK_SEED", 0), "seed of the soak's event schedule and traffic (0: from the clock); env SOAK_SEED")
	flagSoakRate = flag.Int("compat.soak-rate", envInt("SOAK_RATE", 20), "steady messages per second into each instance; env SOAK_RATE")
	flagSoakOnly = flag.String("compat.soak-events", os.Getenv("SOAK_EVENTS"), "only these event kinds, comma-separated (default: all); env SOAK_EVENTS")
	flagSoakOut  = flag.String("compat.soak-out", os.Getenv("SOAK_OUT"), "directory for the soak report (soak.md and soak/); env SOAK_OUT")
	flagSoakDeb  = flag.String("compat.soak-deb", os.Getenv("SOAK_DEB"), "goscache's package for the downgrade (default: goscache_*.deb next to the goscache binary); env SOAK_DEB")
	flagSoakNext = flag.String("compat.soak-deb-next", os.Getenv("SOAK_DEB_NEXT"), "a package of a higher version for the upgrade (default: next/goscache_*.deb next to the goscache binary); env SOAK_DEB_NEXT")
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func envUint(name string, def uint64) uint64 {
	if n, err := strconv.ParseUint(os.Getenv(name), 10, 64); err == nil {
		return n
	}
	return def
}

// Soak limits: what must hold at the end.
const (
	soakDrainBound = 30 * time.Second // queue empty this long after injection stops; no delivery slower
	soakBurst      = 1000             // messages queued at once by a burst
	soakWorkers    = 8                // injecting SMTP clients per instance
	soakMaxIdle    = 5                // max_idle (s): a quiet spell ends the cache daemon
)

// The soak's destinations: a domain, its next hops (sink address indexes)
// and the transport. The sinks at 4, 5 and 7 misbehave (soakBehavior).
var soakDomains = []struct {
	domain    string
	hosts     []int
	transport string // smtp, smtptls (STARTTLS required, connection reuse) or lmtp
}{
	{"plain0.soak", []int{0}, "smtp"},
	{"plain1.soak", []int{1}, "smtp"},
	{"plain2.soak", []int{2}, "smtp"},
	{"plain3.soak", []int{3}, "smtp"},
	{"idle.soak", []int{4}, "smtp"},
	{"refuse.soak", []int{5, 6}, "smtp"},
	{"slow.soak", []int{7}, "smtp"},
	{"tls0.soak", []int{8}, "smtptls"},
	{"tls1.soak", []int{9}, "smtptls"},
	{"lmtp.soak", nil, "lmtp"},
}

// soakBehavior: one sink closes idle connections after a second, one
// refuses every third connection with 421 (the domain's second next hop
// takes the mail), one answers every command slowly.
var soakBehavior = map[int]sink.Behavior{
	4: {IdleClose: time.Second},
	5: {RefuseEvery: 3},
	7: {ReplyDelay: 50 * time.Millisecond},
}

// Event kinds.
const (
	evReload    = "reload"
	evKill      = "kill"
	evStopStart = "stop-start"
	evQuiet     = "max_idle"
	evUpgrade   = "upgrade"
	evDowngrade = "downgrade"
	evSqueeze   = "fd-squeeze"
	evBurst     = "burst"
)

// soakAllowed are the log lines that an event (or a misbehaving sink)
// explains, each named with it. A line matches only once its event has
// fired in the run; any other warning:, fatal: or panic: line fails.
var soakAllowed = []struct{ event, re string }{
	// The machine, not an event: cleanup(8) compares the queue file's
	// time stamp with the clock, and on a loaded virtual machine the file
	// system's clock can run a second ahead (seen in the long run).
	{"machine", `cleanup\[\d+\]: warning: file system clock is \d+ seconds? ahead of local clock`},
	{"machine", `cleanup\[\d+\]: warning: resetting file time stamps - this hurts performance`},
	// Debian's tlsproxy says so when only its client role is used.
	{"tls-reuse", `tlsproxy\[\d+\]: warning: TLS server role is disabled`},
	{evKill, `warning: .*process /\S+/(go)?scache pid \d+ killed by signal 9`},
	{evKill, `warning: problem talking to service private/scache`},
	{evKill, `warning: disabling connection caching`},
	{evKill, `warning: connect to private/scache`},
	{evKill, `warning: .*unexpected protocol`},
	// A kill that hits a daemon master started moments before, which
	// had not served yet: master throttles the service for a second.
	{evKill, `master\[\d+\]: warning: \S+/(go)?scache: bad command startup -- throttling`},
	{evReload, `warning: problem talking to service private/scache`},
	{evStopStart, `warning: problem talking to service private/scache`},
	{evStopStart, `warning: connect to private/scache`},
	{evStopStart, `warning: disabling connection caching`},
	// trivial-rewrite processes end with a reload (the squeeze reloads
	// twice) or a stop; their clients (smtpd, cleanup) reconnect.
	{evReload, `warning: problem talking to service rewrite`},
	{evStopStart, `warning: problem talking to service rewrite`},
	{evSqueeze, `warning: problem talking to service rewrite`},
	// Under RLIMIT_NOFILE 40: Postfix's scache says it has few
	// descriptors; goscache cannot accept a client while every
	// descriptor is in use and says so.
	{evSqueeze, `scache\[\d+\]: warning: could allocate space for only \d+ open files`},
	{evSqueeze, `scache\[\d+\]: error: accept connection: [Tt]oo many open files`},
	{evSqueeze, `warning: problem talking to service private/scache`},
	// At its descriptor limit the daemon cannot accept every client:
	// the listen queue fills and smtp(8) gives up caching for a while.
	{evSqueeze, `warning: connect to private/scache: Resource temporarily unavailable`},
	{evSqueeze, `warning: disabling connection caching`},
	// Postfix's scache does not survive a low RLIMIT_NOFILE (24, 40,
	// 64 tried): it exits (fcntl F_DUPFD fails) and master throttles the service.
	{evSqueeze, `scache\[\d+\]: fatal: fcntl F_DUPFD: Invalid argument`},
	{evSqueeze, `master\[\d+\]: warning: process \S+/(go)?scache-squeezed pid \d+ exit status 1`},
	{evSqueeze, `master\[\d+\]: warning: \S+/(go)?scache-squeezed: bad command startup -- throttling`},
}

// soakSide is one instance of the comparison, its sink and its traffic.
type soakSide struct {
	name   string // "scache" or "goscache"
	prog   string // the cache daemon's comm and log tag
	port   int    // sink port
	inject string // its smtpd, 127.0.0.1:port
	inst   *pfx.Instance
	sink   *sink.Sink
	jobs   chan soakJob
	gate   gate

	mu        sync.Mutex
	injected  map[string]time.Time // Message-ID -> time the smtpd accepted it
	uncertain map[string]bool      // the 250 after DATA was lost: queued or not
	retries   int                  // transactions retried after an error before DATA ended
	samples   []soakSample
	drained   time.Duration // how long the queue took to empty after injection (-1: it did not)
	idleStay  int           // quiet spells the cache daemon outlived
	procs     map[int]*soakProc
}

type soakJob struct {
	seq    int
	domain string
}

type soakSample struct {
	at        time.Duration // since the start
	rssKB     int           // the cache daemon's VmRSS (0: not running)
	fds       int           // its open descriptors (-1: unreadable)
	pids      []int
	queue     int
	delivered int
	load      string // /proc/loadavg's first three fields
}

type soakEvent struct {
	at, took  time.Duration
	kind      string
	side      string // "both" or "goscache"
	detail    string
	installed string        // upgrade and downgrade: the package version dpkg -i left installed
	dpkgDone  time.Duration // and when dpkg -i returned (since the start)
}

// soakProc is one cache daemon process the sampler saw.
type soakProc struct {
	pid     int
	start   time.Time // when the kernel started it (/proc/PID/stat)
	version string    // what its own executable says (/proc/PID/exe -version); goscache only
}

// gate pauses the injecting clients of one side (postfix stop/start): pause
// returns once no transaction is in flight.
type gate struct {
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	active int
}

func (g *gate) init() { g.cond = sync.NewCond(&g.mu) }

func (g *gate) enter() {
	g.mu.Lock()
	for g.paused {
		g.cond.Wait()
	}
	g.active++
	g.mu.Unlock()
}

func (g *gate) leave() {
	g.mu.Lock()
	g.active--
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *gate) pause() {
	g.mu.Lock()
	g.paused = true
	for g.active > 0 {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

func (g *gate) resume() {
	g.mu.Lock()
	g.paused = false
	g.cond.Broadcast()
	g.mu.Unlock()
}

// soakPackages returns the packages of the upgrade and downgrade events,
// or why they cannot run here: they install goscache into the system's
// daemon directory with dpkg -i, so only in a disposable system
// (COMPAT_SYSTEM=1, the container of make soak and make compat-docker).
func soakPackages(bin string) (cur, next string, why string) {
	if os.Getenv("COMPAT_SYSTEM") != "1" {
		return "", "", "not a disposable system (COMPAT_SYSTEM=1 unset): dpkg -i would change this host"
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		return "", "", "no dpkg"
	}
	cur, next = *flagSoakDeb, *flagSoakNext
	if cur == "" {
		debs, _ := filepath.Glob(filepath.Join(filepath.Dir(bin), "goscache_*.deb"))
		if len(debs) != 1 {
			return "", "", fmt.Sprintf("want one goscache_*.deb next to %s, found %q", bin, debs)
		}
		cur = debs[0]
	}
	if next == "" {
		debs, _ := filepath.Glob(filepath.Join(filepath.Dir(bin), "next", "goscache_*.deb"))
		if len(debs) != 1 {
			return "", "", fmt.Sprintf("want one next/goscache_*.deb next to %s (a higher version), found %q", bin, debs)
		}
		next = debs[0]
	}
	return cur, next, ""
}

func TestSoak(t *testing.T) {
	if *flagSoak <= 0 {
		t.Skip("the soak runs only when asked: SOAK=2m (or -compat.soak); see make soak")
	}
	requirePostfix(t)
	bin := requireGoscache(t)
	dur := *flagSoak
	seed := *flagSoakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("soak: SOAK=%v SOAK_SEED=%d SOAK_RATE=%d (repeat with the same SOAK_SEED)", dur, seed, *flagSoakRate)
	fmt.Fprintf(os.Stdout, "== soak: seed %d (SOAK_SEED=%d repeats this run's schedule)\n", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	debCur, debNext, noPkg := soakPackages(bin)
	if noPkg != "" && inCI() && os.Getenv("COMPAT_SYSTEM") == "1" {
		t.Fatalf("package events cannot run: %s", noPkg)
	}
	daemon := bin
	if noPkg == "" {
		// goscache runs from the system's daemon directory, where its
		// package puts it: the upgrade then changes what master starts.
		out, err := exec.CommandContext(t.Context(), "dpkg", "-i", debCur).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg -i %s: %v: %s", debCur, err, out)
		}
		daemon = filepath.Join(*flagDaemonDir, "goscache")
	} else {
		t.Logf("soak: no package events: %s", noPkg)
	}

	sides := []*soakSide{
		newSoakSide(t, "scache", *flagPort, ""),
		newSoakSide(t, "goscache", *flagPort+1, daemon),
	}
	rep := &soakReport{seed: seed, dur: dur, rate: *flagSoakRate, sides: sides, start: time.Now(),
		postfix: postfixVersion(), noPkg: noPkg, debCur: debCur, debNext: debNext}
	rep.loadStart = loadavg()
	rep.versions = append(rep.versions, pkgVersion())

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range sides {
		for range soakWorkers {
			wg.Go(func() { s.injector(ctx, t) })
		}
	}
	start := rep.start
	since := func() time.Duration { return time.Since(start) }

	// Sampling: the cache daemons' RSS and descriptors, the queues.
	every := min(max(dur/240, 2*time.Second), 15*time.Second)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			for _, s := range sides {
				s.sample(since())
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-tk.C:
			}
		}
	})

	// The steady traffic: the same messages into both instances.
	var quiet atomic.Bool
	var seq atomic.Int64
	produce := func(n int, r *rand.Rand) {
		for range n {
			j := soakJob{seq: int(seq.Add(1)), domain: soakDomains[r.IntN(len(soakDomains))].domain}
			for _, s := range sides {
				s.jobs <- j
			}
		}
	}
	trafficRNG := rand.New(rand.NewPCG(seed+1, seed))
	var trafficMu sync.Mutex
	genCtx, stopGen := context.WithCancel(ctx)
	var gen sync.WaitGroup
	gen.Go(func() {
		tk := time.NewTicker(time.Second / time.Duration(*flagSoakRate))
		defer tk.Stop()
		for {
			select {
			case <-genCtx.Done():
				return
			case <-tk.C:
				if !quiet.Load() {
					trafficMu.Lock()
					produce(1, trafficRNG)
					trafficMu.Unlock()
				}
			}
		}
	})

	// The events, at seeded random times between the warm-up and the
	// tail (both without events: the early and late RSS and descriptor
	// figures are compared).
	warm := max(20*time.Second, dur/10)
	tail := max(20*time.Second, dur/8)
	rep.warm, rep.tail = warm, tail
	plan := soakPlan(rng, dur, warm, tail, noPkg == "")
	hold := min(max(dur/20, 15*time.Second), time.Minute)
	for _, p := range plan {
		if d := p.at - since(); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		ev := soakEvent{at: since(), kind: p.kind, side: "both"}
		switch p.kind {
		case evReload:
			ev.detail = eachSide(sides, func(s *soakSide) string {
				if err := s.inst.Reload(ctx); err != nil {
					t.Errorf("%s: %v", s.name, err)
				}
				return "postfix reload"
			})
		case evKill:
			ev.detail = eachSide(sides, func(s *soakSide) string { return s.kill() })
		case evStopStart:
			ev.detail = eachSide(sides, func(s *soakSide) string {
				s.gate.pause()
				defer s.gate.resume()
				if err := s.inst.Stop(ctx); err != nil {
					t.Errorf("%s: %v", s.name, err)
				}
				time.Sleep(time.Second)
				if err := s.inst.Start(ctx); err != nil {
					t.Errorf("%s: %v", s.name, err)
				}
				return "postfix stop; postfix start"
			})
		case evQuiet:
			quiet.Store(true)
			ev.detail = eachSide(sides, func(s *soakSide) string { return s.awaitIdleExit(ctx) })
			quiet.Store(false)
		case evUpgrade, evDowngrade:
			ev.side = "goscache"
			deb := debNext
			if p.kind == evDowngrade {
				deb = debCur
			}
			out, err := exec.CommandContext(ctx, "dpkg", "-i", deb).CombinedOutput()
			if err != nil {
				t.Errorf("dpkg -i %s: %v: %s", deb, err, out)
			}
			ev.dpkgDone = since()
			v := pkgVersion()
			rep.versions = append(rep.versions, v)
			ev.installed = v
			// What the package's postinst does for the system's
			// instance: postfix reload, so that master starts the
			// new binary at the next request. The report checks that
			// every goscache started after this ran the version
			// installed.
			gs := sides[len(sides)-1]
			if err := gs.inst.Reload(ctx); err != nil {
				t.Errorf("%s: %v", gs.name, err)
			}
			ev.detail = fmt.Sprintf("dpkg -i %s: goscache %s installed; postfix reload, as its postinst does", filepath.Base(deb), v)
		case evSqueeze:
			// Half a burst once the daemons run squeezed: more
			// connections to cache than descriptors left.
			var burst sync.WaitGroup
			burst.Go(func() {
				time.Sleep(time.Second)
				trafficMu.Lock()
				produce(soakBurst/2, trafficRNG)
				trafficMu.Unlock()
			})
			ev.detail = eachSide(sides, func(s *soakSide) string { return s.squeeze(ctx, hold) })
			burst.Wait()
			ev.detail += fmt.Sprintf("; %d messages queued at once 1 s in", soakBurst/2)
		case evBurst:
			trafficMu.Lock()
			produce(soakBurst, trafficRNG)
			trafficMu.Unlock()
			ev.detail = fmt.Sprintf("%d messages queued at once", soakBurst)
		}
		ev.took = since() - ev.at
		t.Logf("soak: %v %s (%s): %s (%.1fs)", ev.at.Round(time.Second), ev.kind, ev.side, ev.detail, ev.took.Seconds())
		rep.events = append(rep.events, ev)
	}
	// The tail is steady traffic only: when the events ran late (a
	// quiet spell waits for the daemon to exit), the run goes on until a
	// whole tail has passed after the last one.
	end := max(dur, since()+tail)
	rep.extended = end - dur
	if d := end - since(); d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	stopGen()
	gen.Wait()
	rep.injectEnd = since()
	// Injection ends when every produced message has been handed to the
	// instances; then the queues must drain within the bound.
	for _, s := range sides {
		close(s.jobs)
	}
	wg.Wait()
	rep.injectDone = since()
	var drain sync.WaitGroup
	for _, s := range sides {
		drain.Go(func() { s.drained = s.waitDrained(ctx, 2*soakDrainBound) })
	}
	drain.Wait()
	stopSampling()
	sampler.Wait()
	rep.loadEnd = loadavg()
	// The last statistics lines: the cached sessions expire and the
	// daemons log their intervals.
	time.Sleep(3 * time.Second)
	rep.finish(t)
	if *flagSoakOut != "" {
		if err := rep.write(*flagSoakOut); err != nil {
			t.Error(err)
		}
		// Each instance's maillog next to the report's directory (not
		// into it: the report is committed, the logs are not), so that a
		// run's held or slow messages can be looked up after its
		// container is gone.
		for _, s := range sides {
			dst := filepath.Join(filepath.Dir(filepath.Clean(*flagSoakOut)), "maillog-"+s.name)
			if b, err := os.ReadFile(s.inst.LogFile); err != nil {
				t.Log(err)
			} else if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Log(err)
			}
		}
	}
	fmt.Fprintf(os.Stdout, "\n== soak (seed %d)\n%s\n", seed, rep.summary())
}

// soakPlanned is one event of the schedule.
type soakPlanned struct {
	at   time.Duration
	kind string
}

// soakPlan spreads the events over (warm, dur-tail): each kind once per
// quarter hour of the run (at least once), in a seeded random order, each
// in its own slot at a random place; upgrades and downgrades alternate, so
// the run ends on the package it started with.
func soakPlan(rng *rand.Rand, dur, warm, tail time.Duration, pkgs bool) []soakPlanned {
	rounds := max(1, int((dur+7*time.Minute)/(15*time.Minute)))
	kinds := []string{evReload, evKill, evStopStart, evQuiet, evSqueeze, evBurst}
	if pkgs {
		kinds = append(kinds, evUpgrade, evDowngrade)
	}
	if *flagSoakOnly != "" {
		only := strings.Split(*flagSoakOnly, ",")
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return !slices.Contains(only, k) })
	}
	var list []string
	for range rounds {
		list = append(list, kinds...)
	}
	if len(list) == 0 {
		return nil
	}
	rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	upgraded := false
	for i, k := range list {
		if k == evUpgrade || k == evDowngrade {
			list[i] = evUpgrade
			if upgraded {
				list[i] = evDowngrade
			}
			upgraded = !upgraded
		}
	}
	span := dur - tail - warm
	slot := span / time.Duration(len(list))
	var plan []soakPlanned
	for i, k := range list {
		at := warm + time.Duration(i)*slot + time.Duration(rng.Int64N(int64(slot)/2+1))
		plan = append(plan, soakPlanned{at: at, kind: k})
	}
	return plan
}

// eachSide runs f on every side at once and joins what they say.
func eachSide(sides []*soakSide, f func(*soakSide) string) string {
	out := make([]string, len(sides))
	var wg sync.WaitGroup
	for i, s := range sides {
		wg.Go(func() { out[i] = s.name + ": " + f(s) })
	}
	wg.Wait()
	return strings.Join(out, "; ")
}

func newSoakSide(t *testing.T, name string, port int, daemon string) *soakSide {
	t.Helper()
	root := filepath.Join(os.TempDir(), fmt.Sprintf("goscache-soak-%s-%d", name, os.Getpid()))
	os.RemoveAll(root)
	inject := fmt.Sprintf("127.0.0.1:%d", port+10)
	transports := map[string]string{}
	var cacheDests []string
	for _, d := range soakDomains {
		if d.transport == "lmtp" {
			transports[d.domain] = "lmtp:unix:" + lmtpSocket(root)
			continue
		}
		var hops []string
		for _, h := range d.hosts {
			hops = append(hops, nexthop(h, port))
			cacheDests = append(cacheDests, fmt.Sprintf("127.0.0.%d", 10+h))
		}
		transports[d.domain] = d.transport + ":" + strings.Join(hops, ", ")
	}
	main := map[string]string{
		"smtp_connection_cache_destinations": strings.Join(cacheDests, " "),
		"lmtp_connection_cache_destinations": "inline:{ { " + lmtpSocket(root) + " = lmtp } }",
		"smtp_tls_connection_reuse":          "yes",
		// smtp(8) hands reused TLS connections to tlsproxy(8), whose
		// client role follows smtp_tls_security_level (none here: only
		// the smtptls transport requires TLS) unless enabled.
		"tlsproxy_client_security_level": "may",
		"mynetworks":                     "127.0.0.0/8",
		"smtpd_banner":                   "$myhostname ESMTP soak",
		// A quiet night, compressed: idle smtp(8) and lmtp(8) processes
		// exit, closing their cache connections, then the idle cache
		// daemon exits (an idle lmtp(8) keeps its connection to the
		// cache open, so max_idle on the cache service alone is not
		// enough).
		"max_idle": strconv.Itoa(soakMaxIdle) + "s",
	}
	opts := pfx.Options{
		Root: root, DaemonDir: *flagDaemonDir, CommandDir: *flagCommandDir,
		Main: main, Transports: transports,
		MasterCF: inject + " inet n - n - - smtpd\n" +
			"smtptls unix - - n - - smtp\n  -o smtp_tls_security_level=encrypt\n",
	}
	prog := "scache"
	if daemon != "" {
		prog = "goscache"
		opts.Scache = daemon
		opts.SystemDaemonDir = filepath.Dir(daemon) == filepath.Clean(*flagDaemonDir)
	}
	inst := createInstance(t, name, opts)
	tlsConf, err := sink.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := range sinkHosts {
		addrs = append(addrs, sinkAddr(i, port))
	}
	addrs = append(addrs, "unix:"+lmtpSocket(root))
	sk, err := sink.Start(sink.Config{Addrs: addrs, TLS: tlsConf, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close() })
	for i, b := range soakBehavior {
		sk.SetBehavior(sinkAddr(i, port), b)
	}
	if err := inst.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := &soakSide{name: name, prog: prog, port: port, inject: inject, inst: inst, sink: sk,
		jobs: make(chan soakJob, 1<<17), injected: map[string]time.Time{}, uncertain: map[string]bool{},
		procs: map[int]*soakProc{}}
	s.gate.init()
	return s
}

func (s *soakSide) messageID(j soakJob) string {
	return fmt.Sprintf("soak.%s.%d@soak.test", s.name, j.seq)
}

// injector submits jobs over one SMTP connection to the instance's smtpd
// at a time (a new one every 100 messages), retrying a transaction that
// failed before the end of DATA. A transaction whose reply to the end of
// DATA was lost is not retried: the message may be queued, so it counts as
// uncertain (delivered at most once).
func (s *soakSide) injector(ctx context.Context, t *testing.T) {
	var c *smtp.Client
	n := 0
	drop := func() {
		if c != nil {
			c.Close()
			c = nil
		}
	}
	defer drop()
	for j := range s.jobs {
		id := s.messageID(j)
		to := fmt.Sprintf("rcpt%d@%s", j.seq, j.domain)
		body := fmt.Sprintf("From: <sender@soak.test>\r\nTo: <%s>\r\nSubject: soak %d\r\nMessage-ID: <%s>\r\n\r\nsoak message %d\r\n", to, j.seq, id, j.seq)
		for attempt := 0; ; attempt++ {
			if ctx.Err() != nil {
				return
			}
			s.gate.enter()
			if c == nil || n >= 100 {
				if c != nil {
					c.Quit()
				}
				drop()
				var err error
				if c, err = smtp.Dial(s.inject); err == nil {
					err = c.Hello("client.soak.test")
				}
				if err != nil {
					drop()
					s.gate.leave()
					time.Sleep(200 * time.Millisecond)
					continue
				}
				n = 0
			}
			n++
			done, certain := s.submit(c, to, body)
			s.gate.leave()
			if done {
				s.mu.Lock()
				if certain {
					s.injected[id] = time.Now()
				} else {
					s.uncertain[id] = true
				}
				s.mu.Unlock()
				if !certain {
					drop()
				}
				break
			}
			drop()
			s.mu.Lock()
			s.retries++
			s.mu.Unlock()
			if attempt > 0 {
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
}

// submit runs one transaction. done is false when it failed before the end
// of DATA (retry); certain is false when the reply to the end of DATA did
// not arrive.
func (s *soakSide) submit(c *smtp.Client, to, body string) (done, certain bool) {
	if err := c.Mail("sender@soak.test", nil); err != nil {
		return false, false
	}
	if err := c.Rcpt(to, nil); err != nil {
		return false, false
	}
	w, err := c.Data()
	if err != nil {
		return false, false
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return false, false
	}
	if err := w.Close(); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return false, false // refused: not queued
		}
		return true, false
	}
	return true, true
}

// cachePids returns the running cache daemon's pids.
func (s *soakSide) cachePids() []int { return s.inst.Pids(s.prog) }

func (s *soakSide) kill() string {
	var pids []int
	for range 50 {
		if pids = s.cachePids(); len(pids) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(pids) == 0 {
		return "no " + s.prog + " process to kill"
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return fmt.Sprintf("kill -9 %s%v", s.prog, pids)
}

// awaitIdleExit waits, with no new mail, until the cache daemon has exited
// on its own (max_idle), for at most a minute and a half.
func (s *soakSide) awaitIdleExit(ctx context.Context) string {
	start := time.Now()
	before := s.cachePids()
	for time.Since(start) < 90*time.Second && ctx.Err() == nil {
		// At least twice max_idle: the daemon may be between two
		// processes (a reload) when the spell begins.
		if len(s.cachePids()) == 0 && time.Since(start) > 2*soakMaxIdle*time.Second {
			return fmt.Sprintf("%s%v exited idle after %.0fs without mail", s.prog, before, time.Since(start).Seconds())
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.mu.Lock()
	s.idleStay++
	s.mu.Unlock()
	return fmt.Sprintf("%s%v still running after %.0fs without mail", s.prog, s.cachePids(), time.Since(start).Seconds())
}

// squeezeLimit is the descriptor limit (RLIMIT_NOFILE) of the cache daemon
// during a squeeze: with the half burst the squeeze queues, goscache holds
// about 30 descriptors under a limit of 64, so 40 brings it to its limit.
// Postfix's scache does not run under such a limit at all (fatal: fcntl
// F_DUPFD, with 24 and 64 as well): master throttles it, and smtp(8)
// delivers uncached until the limit is lifted.
const squeezeLimit = 40

// squeezeWrapper is the command master.cf names during a squeeze: the
// cache daemon under a lower descriptor limit. (A running process's limit
// cannot be lowered from outside without CAP_SYS_RESOURCE, which neither
// this machine nor its containers have.)
const squeezeWrapper = "#!/bin/sh\n# goscache soak (compat-tests/soak_test.go): the cache daemon with few descriptors\nulimit -n %d\nexec %s \"$@\"\n"

// squeeze restarts the cache daemon with RLIMIT_NOFILE squeezeLimit
// (master.cf's command is a wrapper for hold), then gives it back its
// usual limit; both switches are postconf -F and postfix reload.
func (s *soakSide) squeeze(ctx context.Context, hold time.Duration) string {
	wrapper := s.prog + "-squeezed"
	path := filepath.Join(s.inst.DaemonDir, wrapper)
	body := fmt.Sprintf(squeezeWrapper, squeezeLimit, filepath.Join(s.inst.DaemonDir, s.prog))
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		return "squeeze: " + err.Error()
	}
	defer os.Remove(path)
	set := func(cmd string) error {
		if out, err := s.inst.Postconf(ctx, "-F", "scache/unix/command="+cmd); err != nil {
			return fmt.Errorf("postconf -F: %v: %s", err, out)
		}
		return s.inst.Reload(ctx)
	}
	if err := set(wrapper); err != nil {
		return "squeeze: " + err.Error()
	}
	peak, pid := 0, 0
	deadline := time.Now().Add(hold)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, p := range s.cachePids() {
			if n := countFds(p); n > peak {
				peak, pid = n, p
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := set(s.prog); err != nil {
		return "squeeze: " + err.Error()
	}
	return fmt.Sprintf("%s under RLIMIT_NOFILE %d for %v: at most %d descriptors open (pid %d); then the usual limit", s.prog, squeezeLimit, hold, peak, pid)
}

func countFds(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

func (s *soakSide) sample(at time.Duration) {
	smp := soakSample{at: at, pids: s.cachePids(), delivered: s.sink.Total().Messages, load: loadavg()}
	for _, pid := range smp.pids {
		s.mu.Lock()
		_, seen := s.procs[pid]
		s.mu.Unlock()
		if !seen {
			if p := readProc(pid, s.prog == "goscache"); p != nil {
				s.mu.Lock()
				s.procs[pid] = p
				s.mu.Unlock()
			}
		}
		smp.rssKB += rssKB(pid)
		if n := countFds(pid); n >= 0 {
			smp.fds += n
		} else {
			smp.fds = -1
		}
	}
	smp.queue, _ = s.inst.QueueCount()
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
}

// waitDrained waits for an empty queue and returns how long it took, or
// -1 when the queue was not empty within limit. It asks the queue manager
// to scan its queues (postqueue -f) at once and every 5 s, as new mail
// would: a queue file that a queue manager started by postfix reload
// skipped ("skipped, still being delivered") goes back to incoming, and the
// queue manager looks there only when mail arrives or is flushed.
func (s *soakSide) waitDrained(ctx context.Context, limit time.Duration) time.Duration {
	start := time.Now()
	var flushed time.Time
	for time.Since(start) < limit {
		if q, err := s.inst.QueueCount(); err == nil && q == 0 {
			return time.Since(start)
		}
		if time.Since(flushed) >= 5*time.Second {
			s.inst.Flush(ctx)
			flushed = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return -1
}

// readProc describes a running process: its start time and, with
// version, what its executable prints for -version (the binary it runs,
// even when a package upgrade has since replaced the file). nil when the
// process is gone.
func readProc(pid int, version bool) *soakProc {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// Fields after "(comm) ": state is field 3, starttime field 22, in
	// clock ticks (USER_HZ, 100 on Linux) since boot.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return nil
	}
	ticks, err1 := strconv.ParseInt(f[19], 10, 64)
	boot, err2 := bootTime()
	if err1 != nil || err2 != nil {
		return nil
	}
	p := &soakProc{pid: pid, start: boot.Add(time.Duration(ticks) * 10 * time.Millisecond)}
	if version {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, fmt.Sprintf("/proc/%d/exe", pid), "-version").Output()
		if err != nil {
			return nil
		}
		// "goscache 0.1.0-1 (revision ..., go1.x)"
		if f := strings.Fields(string(out)); len(f) >= 2 {
			p.version = f[1]
		}
	}
	return p
}

// bootTime is the instant the system booted, as the clock that /proc's
// start times count from (CLOCK_BOOTTIME) places it: /proc/stat's btime
// is in whole seconds, which put a process's start up to a second early.
func bootTime() (time.Time, error) {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, err
	}
	return now.Add(-time.Duration(ts.Nano())), nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func postfixVersion() string {
	out, err := exec.Command(filepath.Join(*flagCommandDir, "postconf"), "-d", "-h", "mail_version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func pkgVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "goscache").Output()
	if err != nil {
		return "(no package)"
	}
	return strings.TrimSpace(string(out))
}

// TestReadProc: the soak's start time of a process is within a tick or
// two of when it was started (the upgrade check of the report rests on it).
func TestReadProc(t *testing.T) {
	before := time.Now()
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	defer cmd.Process.Kill()
	p := readProc(cmd.Process.Pid, false)
	if p == nil {
		t.Fatal("readProc: nil for a running process")
	}
	if p.start.Before(before.Add(-30*time.Millisecond)) || p.start.After(after.Add(30*time.Millisecond)) {
		t.Errorf("start %v, want between %v and %v", p.start.Format(time.StampMicro), before.Format(time.StampMicro), after.Format(time.StampMicro))
	}
}
