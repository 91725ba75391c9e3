//go:build compat

package compattest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/compat-tests/sink"
)

// TestSystemUpgrade is issue 19's §4 on the machine's own Postfix (the
// default instance in /etc/postfix), as TestSystemInstall sets it up:
// goscache installed from its package and switched to in way 1
// (postconf -F 'scache/unix/command = goscache'), with a steady stream
// of mail to one cached next hop (a message every streamEvery, each
// counted at the sink by its Message-ID). While the mail flows it
//
//  1. installs the next package (the same source stamped with a higher
//     version, which compat-tests/docker.sh builds into next/ beside the
//     package): the running goscache must finish and master must start the
//     new binary, which serves the next requests;
//  2. installs the first package again (a downgrade): the same;
//  3. removes the package (dpkg -r) while master.cf still names goscache:
//     prerm warns; the goscache that runs keeps serving until it exits,
//     then (after the next postfix reload, as the operator's next reload,
//     a restart or max_idle would) smtp(8) delivers without a cache: the
//     messages, the warnings and the delays of that state are measured and
//     printed;
//  4. switches back to Postfix's scache (docs/operator.md) with a reload,
//     which leaves caching off for a while (the service stays throttled,
//     smtp(8) processes that disabled caching keep it off), then restarts
//     Postfix, after which deliveries must reuse connections again;
//  5. purges the package: no file of it remains.
//
// On trixie and later Postfix's own package trigger restarts Postfix at
// every dpkg -i and -r (allowServiceActions). No message may be lost or
// delivered twice, except a delivery that such a restart cut off, which
// Postfix may repeat (at least once), and which is then said; messages a
// restart left queued are flushed with postqueue -f and counted. Which
// daemon (pid, start time, version as scachectl stats reports it, lookups
// from its statistics lines) served which phase is logged and printed
// under "== compat".
// Runs only with COMPAT_SYSTEM=1, as TestSystemInstall, and leaves the
// machine as it found it.
func TestSystemUpgrade(t *testing.T) {
	bin, origMaster := requireFreshSystem(t)
	ctx := t.Context()
	postconf := filepath.Join(*flagCommandDir, "postconf")
	mainCF := filepath.Join(systemConfigDir, "main.cf")
	masterCF := filepath.Join(systemConfigDir, "master.cf")
	first := debPackage(t, bin)
	next := nextPackage(t, bin)
	firstVer, nextVer := debVersion(t, first), debVersion(t, next)
	if out, err := exec.CommandContext(ctx, "dpkg", "--compare-versions", nextVer, "gt", firstVer).CombinedOutput(); err != nil {
		t.Fatalf("%s (%s) is not newer than %s (%s): %v %s", next, nextVer, first, firstVer, err, out)
	}
	if err := exec.CommandContext(ctx, "dpkg", "-s", "goscache").Run(); err == nil {
		t.Fatal("the goscache package is installed already: this test wants a machine without it")
	}

	allowServiceActions(t)
	daemonDir := pfx.DefaultDaemonDir
	installed := filepath.Join(daemonDir, "goscache")
	pkgFiles := installDeb(t, first, installed)
	t.Cleanup(func() {
		if exec.Command("dpkg", "-s", "goscache").Run() == nil {
			exec.Command("dpkg", "--purge", "goscache").Run()
		}
	})
	t.Cleanup(func() {
		if err := os.WriteFile(masterCF, origMaster, 0o644); err != nil {
			t.Errorf("restore %s: %v", masterCF, err)
		}
		if err := os.Remove(mainCF); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("remove %s: %v", mainCF, err)
		}
		if t.Failed() || *flagKeep {
			t.Logf("system log kept in %s", systemLogFile)
		} else {
			os.Remove(systemLogFile)
		}
	})
	if err := os.WriteFile(mainCF, []byte(systemMainCF()), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, postconf, "-F", "scache/unix/command = goscache")
	checkQuiet(t)
	in, err := pfx.Open(ctx, systemConfigDir, *flagCommandDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Postfix(ctx, "status"); err == nil {
		t.Fatal("the default instance is already running")
	}
	sk, err := sink.Start(sink.Config{
		Addrs:  []string{fmt.Sprintf("%s:%d", systemSinkHost, systemSinkPort())},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close() })
	off := in.LogSize()
	if err := in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	socket := filepath.Join(in.QueueDir, "private", "scache")

	st := newStream(in)
	p := st.begin("first", firstVer)
	st.start(ctx, t)
	defer st.stop()
	var phases []*phaseResult

	// 0. The first package serves.
	st.waitPhase(t, sk, p, streamPerPhase)
	p.daemon = serving(t, socket, time.Time{})
	phases = append(phases, p)

	// 1, 2. Upgrade, then downgrade, while the mail flows.
	prev := p.daemon
	for _, step := range []struct{ name, deb, ver string }{
		{"upgrade", next, nextVer},
		{"downgrade", first, firstVer},
	} {
		p := st.begin(step.name, step.ver)
		t0 := time.Now()
		p.dpkg = runCmd(t, "dpkg", "-i", step.deb)
		st.restartedBy(p.dpkg, t0)
		t.Logf("%s: dpkg -i %s:\n%s", step.name, step.deb, p.dpkg)
		if v := installedVersion(t); v != step.ver {
			t.Errorf("%s: dpkg says %s is installed, want %s", step.name, v, step.ver)
		}
		// The goscache that ran before must finish and a new one, started
		// from the new file, serve.
		p.daemon = serving(t, socket, t0)
		if prev.pid != 0 && !exited(prev.pid, 10*time.Second) {
			t.Errorf("%s: the goscache that served before (pid %d, started %s) still runs 10s after a new one answered", step.name, prev.pid, prev.start.Format(time.TimeOnly))
		}
		// A build without a stamped version reports "devel" (plain go
		// build); the package's is stamped by deb/build.sh.
		if v := p.daemon.version; v != "" && v != "devel" && v != step.ver {
			t.Errorf("%s: the goscache serving now reports version %s, want %s", step.name, p.daemon.version, step.ver)
		}
		st.waitPhase(t, sk, p, streamPerPhase)
		prev = p.daemon
		phases = append(phases, p)
	}

	// 3. dpkg -r while master.cf still runs goscache.
	// From here on deliveries may take seconds each (Postfix's trigger
	// restarts Postfix on trixie and later): a slower stream, so that the
	// queue does not grow.
	p = st.beginEvery("removed", "-", uncachedEvery)
	t0 := time.Now()
	p.dpkg = runCmd(t, "dpkg", "-r", "goscache")
	st.restartedBy(p.dpkg, t0)
	t.Logf("dpkg -r goscache:\n%s", p.dpkg)
	if !strings.Contains(p.dpkg, "warning: master.cf still runs goscache") {
		t.Errorf("dpkg -r with goscache in master.cf: prerm did not warn: %q", p.dpkg)
	}
	if _, err := os.Stat(installed); err == nil {
		t.Errorf("%s remains after dpkg -r", installed)
	}
	p.orphan = processAlive(prev.pid)
	time.Sleep(phaseTime)
	phases = append(phases, p)
	// Uncached: master cannot start the daemon master.cf names. The
	// goscache still running (its file deleted) is ended the way the
	// next reload ends it.
	// Until two of its messages have arrived: the first delivery of each
	// smtp(8) process waits for the missing service.
	p = st.beginEvery("uncached", "-", uncachedEvery)
	if err := in.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	st.waitPhase(t, sk, p, 2)
	phases = append(phases, p)

	// 4. Switch back (docs/operator.md, way 1) while the mail flows.
	// master keeps the service throttled after the reload (up to
	// service_throttle_time), and the smtp(8) processes that disabled
	// caching keep it off until they exit: still uncached.
	p = st.beginEvery("switched-back", "postfix", uncachedEvery)
	runCmd(t, postconf, "-F", "scache/unix/command = scache")
	if err := in.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(phaseTime)
	phases = append(phases, p)
	// What docs/operator.md advises then: restart Postfix once
	// (systemctl restart postfix; here postfix stop, postfix start), and
	// Postfix's own scache serves at once.
	st.pause()
	t0 = time.Now()
	if err := in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st.restarts = append(st.restarts, [2]time.Time{t0, time.Now()})
	p = st.begin("restarted", "postfix")
	phases = append(phases, p)
	st.waitReuse(t, p)
	st.stop()

	// Every message once, the queue empty.
	// Deliveries that a Postfix restart cut off wait in the incoming
	// queue, time-stamped ahead, until a queue scan after that (the next
	// new message, or qmgr's wakeup every 300s): postqueue -f, as an
	// operator would after a restart, delivers them now.
	for deadline := time.Now().Add(10 * time.Second); sk.Total().Messages < st.sent() && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	if n := st.sent() - st.arrived(sk); n > 0 && len(st.restarts) > 0 {
		st.flushed = n
		t.Logf("%d messages not delivered 10s after the stream stopped (Postfix restarted %d times): postqueue -f", n, len(st.restarts))
		if err := in.Flush(ctx); err != nil {
			t.Error(err)
		}
	}
	held, err := waitDelivered(in, sk, st.sent())
	if err != nil {
		t.Error(err)
	}
	if len(held) > 0 {
		t.Logf("queue files held by qmgr after a reload (flushed): %v", held)
	}
	lines, err := in.LogSince(off)
	if err != nil {
		t.Fatal(err)
	}
	st.check(t, sk)
	// The figures of each phase, from the log.
	dels := parseDeliveries(lines)
	stats := statsByPid(lines)
	var report strings.Builder
	fmt.Fprintf(&report, "\n== compat: upgrade while mail flows (%s -> %s -> %s -> removed -> Postfix's scache): %d messages sent, %d delivered, %d duplicated (%d of them cut off by a Postfix restart), %d lost; Postfix restarted %d times, %d messages cut off by a restart delivered by postqueue -f\n",
		firstVer, nextVer, firstVer, st.sent(), st.delivered, st.duplicated, len(st.restartDups), st.lost, len(st.restarts), st.flushed)
	for i, p := range phases {
		p.summarize(st, dels)
		from, to := phaseStartLine(lines, phases, p.name), len(lines)
		if i+1 < len(phases) {
			to = phaseStartLine(lines, phases, phases[i+1].name)
		}
		for _, l := range lines[from:max(from, to)] {
			if l.Program == "smtp" && strings.HasPrefix(l.Text, "warning: ") {
				p.smtpWarnings++
			}
		}
		fmt.Fprintf(&report, "== compat:   %s\n", p.line(stats))
	}

	// The removal: what smtp(8) and master logged while no cache daemon
	// could be started.
	removedAt := phaseStartLine(lines, phases, "uncached")
	warnings := countWarnings(lines[removedAt:])
	for _, w := range warnings {
		fmt.Fprintf(&report, "== compat:   after removal: %dx %s\n", w.n, w.text)
	}
	var sample []string
	for _, l := range lines[removedAt:] {
		if (l.Program == "smtp" || l.Program == "master") && (strings.Contains(l.Text, "warning:") || strings.Contains(l.Text, "status=sent")) {
			sample = append(sample, l.Raw)
		}
	}
	t.Logf("after removal, the first lines of smtp and master:\n%s", strings.Join(sample[:min(len(sample), 30)], "\n"))
	for _, p := range phases {
		if (p.name == "first" || p.name == "upgrade" || p.name == "downgrade") && p.reused == 0 {
			t.Errorf("%s: no delivery over a reused connection", p.name)
		}
	}
	// The rest of Postfix never has anything to say about it.
	// (postdrop may warn that it cannot wake pickup while Postfix
	// restarts: the message waits in maildrop, and pickup finds it.)
	// A restart cuts off whatever talks to the other daemons then (e.g.
	// cleanup(8): "problem talking to service rewrite: Connection reset by
	// peer"): those seconds are not checked.
	for _, p := range pfx.Problems(lines, "pickup", "cleanup", "qmgr", "postlogd") {
		if st.duringRestart(logTime(p)) {
			t.Logf("during a Postfix restart: %s", p)
			continue
		}
		t.Errorf("%s", p)
	}
	// Before the removal, and after switching back, nothing may warn.
	for _, p := range pfx.Problems(lines[:phaseStartLine(lines, phases, "removed")], "smtp", "master", "postlogd", "scache") {
		t.Errorf("before the removal: %s", p)
	}
	for _, p := range pfx.Problems(lines[phaseStartLine(lines, phases, "restarted"):], "postlogd", "scache") {
		t.Errorf("after the restart: %s", p)
	}
	for _, p := range phases {
		if p.name == "restarted" && p.reused == 0 {
			t.Errorf("restarted: no delivery over a reused connection with Postfix's scache")
		}
	}

	// 5. Purge after switching back: nothing of the package remains.
	if err := in.Stop(ctx); err != nil {
		t.Error(err)
	}
	if state := dpkgStatus(t); state != "" {
		out := runCmd(t, "dpkg", "--purge", "goscache")
		t.Logf("dpkg --purge goscache (package state %q):\n%s", state, out)
		if strings.Contains(out, "warning:") {
			t.Errorf("dpkg --purge warned after switching back: %s", out)
		}
	}
	if state := dpkgStatus(t); state != "" {
		t.Errorf("after dpkg --purge dpkg still knows goscache: %s", state)
	}
	infos, _ := filepath.Glob("/var/lib/dpkg/info/goscache.*")
	for _, f := range append(append(pkgFiles, infos...), "/usr/share/doc/goscache") {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s remains after dpkg --purge", f)
		}
	}
	fmt.Fprint(os.Stdout, report.String())
	t.Log(report.String())
}

const (
	// streamEvery is the pace of the mail stream: about ten messages a
	// second, enough for smtp(8) to reuse cached connections all the time.
	streamEvery = 100 * time.Millisecond
	// streamPerPhase is how many messages of each phase must have arrived
	// before the next step.
	streamPerPhase = 5
	// uncachedEvery is the pace of the stream once the cache daemon is
	// gone (deliveries take seconds each then; a faster stream would only
	// grow the queue), phaseTime how long each such phase lasts.
	uncachedEvery = 500 * time.Millisecond
	phaseTime     = 3 * time.Second
)

// policyRC is Debian's hook that tells invoke-rc.d whether a maintainer
// script may start, stop or restart a service.
const policyRC = "/usr/sbin/policy-rc.d"

// allowServiceActions makes invoke-rc.d act in this container as on a
// booted machine: without an init system and without policy-rc.d it
// blocks every action ("No init system and policy-rc.d missing!
// Defaulting to block"), so Postfix's package trigger (trixie and later:
// "Processing triggers for postfix ... Restarting postfix", run whenever
// a package adds or removes a file in /usr/lib/postfix, as goscache's
// does) would restart nothing here while it restarts postfix.service on a
// real server. A policy-rc.d that allows everything is installed for the
// test and removed after it.
func allowServiceActions(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(policyRC); err == nil {
		t.Logf("%s exists: left as it is", policyRC)
		return
	}
	if err := os.WriteFile(policyRC, []byte("#!/bin/sh\n# TestSystemUpgrade: allow every action, as on a booted machine\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(policyRC) })
}

// nextPackage is the package with a higher version that docker.sh builds
// into next/ beside the first one.
func nextPackage(t *testing.T, bin string) string {
	t.Helper()
	debs, _ := filepath.Glob(filepath.Join(filepath.Dir(bin), "next", "goscache_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one goscache_*.deb in %s/next (compat-tests/docker.sh builds it with GOSCACHE_VERSION), found %q", filepath.Dir(bin), debs)
	}
	return debs[0]
}

func debVersion(t *testing.T, deb string) string {
	t.Helper()
	return strings.TrimSpace(runCmd(t, "dpkg-deb", "-f", deb, "Version"))
}

func installedVersion(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(runCmd(t, "dpkg-query", "-W", "-f", "${Version}", "goscache"))
}

// dpkgStatus is dpkg's state of the package ("install ok installed",
// "deinstall ok config-files"), or "" when dpkg does not know it.
func dpkgStatus(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "dpkg-query", "-W", "-f", "${Status}", "goscache").Output()
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(out))
	if strings.HasSuffix(s, "not-installed") {
		return ""
	}
	return s
}

// exited waits up to d for pid to exit.
func exited(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); processAlive(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// daemonInfo is the cache daemon that answered scachectl stats.
type daemonInfo struct {
	pid     int
	start   time.Time
	version string // as scachectl stats -json reports it, when it does
}

func (d daemonInfo) String() string {
	v := d.version
	if v == "" {
		v = "(not reported)"
	}
	return fmt.Sprintf("goscache pid %d started %s version %s", d.pid, d.start.Format("15:04:05.000"), v)
}

// serving asks the cache socket with the installed scachectl until a
// goscache started after since answers (master starts it at the first
// request after the old one finished), for at most 30 seconds, and
// returns it with its pid: the only goscache child of master.
func serving(t *testing.T, socket string, since time.Time) daemonInfo {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := exec.CommandContext(t.Context(), "/usr/bin/scachectl", "-socket", socket, "stats", "-json").Output()
		last = string(out)
		if err != nil {
			continue
		}
		var v struct {
			Server  string    `json:"server"`
			Start   time.Time `json:"start"`
			Version string    `json:"version"`
			Build   struct {
				Version string `json:"version"`
			} `json:"build"`
		}
		if json.Unmarshal(out, &v) != nil || v.Server != "goscache" || v.Start.Before(since) {
			continue
		}
		d := daemonInfo{start: v.Start, version: v.Version}
		if d.version == "" {
			d.version = v.Build.Version
		}
		if pids := pfx.ProcsNamed("goscache"); len(pids) > 0 {
			for _, pid := range pids {
				if startedAfter(pid, since) {
					d.pid = pid
				}
			}
		}
		t.Logf("serving: %s (scachectl stats -json: %s)", d, strings.TrimSpace(last))
		return d
	}
	t.Fatalf("no goscache started after %s answered on %s within 30s; last answer %q", since.Format("15:04:05.000"), socket, last)
	return daemonInfo{}
}

// startedAfter reports whether pid started after t, from its start time
// in /proc (clock ticks after boot).
func startedAfter(pid int, t time.Time) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 20 {
		return false
	}
	ticks, err := strconv.ParseFloat(f[19], 64)
	if err != nil {
		return false
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return false
	}
	uptime, _ := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	started := time.Now().Add(-time.Duration((uptime - ticks/100) * float64(time.Second)))
	return started.After(t.Add(-50 * time.Millisecond))
}

// stream sends one message every streamEvery through the instance until
// stopped, each with a Message-ID naming the phase it was sent in.
type stream struct {
	in *pfx.Instance

	mu     sync.Mutex
	phase  *phaseResult
	ids    []string // every Message-ID sent, without brackets
	byID   map[string]*phaseResult
	errs   []error
	cancel context.CancelFunc
	done   chan struct{}

	delivered, duplicated, lost int
	// restarts are the times Postfix was restarted (by its package
	// trigger during dpkg, or by the test), from and to.
	restarts [][2]time.Time
	// flushed is how many messages were still queued after the stream
	// stopped and Postfix had restarted, delivered by postqueue -f.
	flushed int
	// restartDups are the messages delivered twice because a restart
	// ended smtp(8) between the end of DATA and the server's reply.
	restartDups []string
}

// restartedBy records a Postfix restart when dpkg's output, of a dpkg run
// started at t0 and just finished, says that Postfix's trigger restarted
// it.
func (s *stream) restartedBy(dpkgOut string, t0 time.Time) {
	if strings.Contains(dpkgOut, "Restarting postfix") && !strings.Contains(dpkgOut, "Defaulting to block") {
		s.restarts = append(s.restarts, [2]time.Time{t0, time.Now()})
	}
}

// duringRestart reports whether t is at most two seconds before a restart
// or during one: a delivery then may be cut off after the server took the
// message, and retried (Postfix delivers at least once).
func (s *stream) duringRestart(t time.Time) bool {
	for _, r := range s.restarts {
		if !t.Before(r[0].Add(-2*time.Second)) && !t.After(r[1].Add(time.Second)) {
			return true
		}
	}
	return false
}

func newStream(in *pfx.Instance) *stream {
	return &stream{in: in, byID: map[string]*phaseResult{}}
}

// phaseResult is one phase of the test and what it delivered.
type phaseResult struct {
	name, version string
	began         time.Time
	daemon        daemonInfo
	every         time.Duration // pace of the stream
	dpkg          string        // dpkg's output at the start of the phase
	orphan        bool          // removed: the old goscache still ran after dpkg -r
	ids           []string

	delivered, reused int
	smtpWarnings      int        // smtp(8)'s warnings logged during the phase
	delayMax          float64    // seconds, smtp's delay=
	delayMedian       float64    // seconds, smtp's delay=
	delaysMedian      [4]float64 // smtp's delays=a/b/c/d, each the median
}

func (s *stream) begin(name, version string) *phaseResult {
	return s.beginEvery(name, version, streamEvery)
}

// beginEvery starts phase name, with a message every every.
func (s *stream) beginEvery(name, version string, every time.Duration) *phaseResult {
	p := &phaseResult{name: name, version: version, began: time.Now(), every: every}
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
	return p
}

// pause stops sending until the next phase begins.
func (s *stream) pause() {
	s.mu.Lock()
	s.phase = nil
	s.mu.Unlock()
}

func (s *stream) start(ctx context.Context, t *testing.T) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		for i := 0; ; i++ {
			s.mu.Lock()
			p := s.phase
			s.mu.Unlock()
			every := streamEvery
			if p != nil {
				every = p.every
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
			if p == nil {
				continue
			}
			id := fmt.Sprintf("upgrade.%s.%d.%d@compat.test", p.name, i, os.Getpid())
			err := s.in.Send(context.WithoutCancel(ctx), "sender@compat.test", fmt.Sprintf("rcpt%d@%s", i, systemDomain), "upgrade "+p.name, id)
			s.mu.Lock()
			if err != nil {
				s.errs = append(s.errs, err)
			} else {
				s.ids = append(s.ids, id)
				s.byID[id] = p
				p.ids = append(p.ids, id)
			}
			s.mu.Unlock()
		}
	}()
}

func (s *stream) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// arrived is how many of the messages sent the sink has.
func (s *stream) arrived(sk *sink.Sink) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range sk.Messages() {
		if id := strings.Trim(m.MessageID, "<>"); s.byID[id] != nil {
			seen[id] = true
		}
	}
	return len(seen)
}

func (s *stream) sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// waitPhase waits until n messages sent in phase p have arrived at the
// sink, for at most a minute.
func (s *stream) waitPhase(t *testing.T, sk *sink.Sink, p *phaseResult, n int) {
	t.Helper()
	prefix := "<upgrade." + p.name + "."
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		got := 0
		for _, m := range sk.Messages() {
			if strings.HasPrefix(m.MessageID, prefix) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			errs := s.errs
			s.mu.Unlock()
			t.Fatalf("%s: %d of %d messages arrived after a minute (sendmail errors: %v)%s", p.name, got, n, errs, stuckReport(s.in))
		}
	}
}

// waitReuse waits, for at most 30 seconds, until smtp(8) delivers a
// message of phase p over a reused connection (conn_use >= 2).
func (s *stream) waitReuse(t *testing.T, p *phaseResult) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		lines, err := s.in.LogSince(0)
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		ids := slices.Clone(p.ids)
		s.mu.Unlock()
		dels := parseDeliveries(lines)
		for _, id := range ids {
			if d, ok := dels[id]; ok && d.connUse >= 2 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no delivery over a reused connection 30s after the restart (%d messages sent)%s", p.name, len(ids), stuckReport(s.in))
		}
	}
}

// check requires every message sent at the sink exactly once, and nothing
// else there.
func (s *stream) check(t *testing.T, sk *sink.Sink) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.errs {
		t.Errorf("sendmail: %v", err)
	}
	got := map[string]int{}
	first := map[string]time.Time{}
	for _, m := range sk.Messages() {
		id := strings.Trim(m.MessageID, "<>")
		if got[id] == 0 {
			first[id] = m.At
		}
		got[id]++
	}
	for _, id := range s.ids {
		switch n := got[id]; {
		case n == 0:
			s.lost++
			t.Errorf("message %s (phase %s) never arrived", id, s.byID[id].name)
		case n == 2 && s.duringRestart(first[id]):
			s.duplicated++
			s.restartDups = append(s.restartDups, id)
			t.Logf("message %s (phase %s) arrived twice: first at %s, as Postfix restarted", id, s.byID[id].name, first[id].Format("15:04:05.000"))
		case n > 1:
			s.duplicated++
			t.Errorf("message %s (phase %s) arrived %d times (first at %s, no Postfix restart then)", id, s.byID[id].name, n, first[id].Format("15:04:05.000"))
		}
		if got[id] > 0 {
			s.delivered++
		}
		delete(got, id)
	}
	for id, n := range got {
		t.Errorf("the sink got %d unexpected message(s) %s", n, id)
	}
}

// delivery is what smtp(8) logged for one message.
type delivery struct {
	connUse int // 1 for a new connection
	delay   float64
	delays  [4]float64
	status  string
}

var (
	msgIDRE = regexp.MustCompile(`^([0-9A-Za-z]+): message-id=<([^>]*)>`)
	smtpRE  = regexp.MustCompile(`^([0-9A-Za-z]+): to=<[^>]*>, relay=\S+,(?: conn_use=(\d+),)? delay=([0-9.]+), delays=([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+), dsn=\S+, status=(\w+)`)
)

// parseDeliveries maps each Message-ID to smtp(8)'s delivery line of it,
// through the queue id cleanup(8) logged with the Message-ID.
func parseDeliveries(lines []pfx.LogLine) map[string]delivery {
	ids := map[string]string{}
	out := map[string]delivery{}
	for _, l := range lines {
		if m := msgIDRE.FindStringSubmatch(l.Text); m != nil && l.Program == "cleanup" {
			ids[m[1]] = m[2]
			continue
		}
		m := smtpRE.FindStringSubmatch(l.Text)
		if m == nil || l.Program != "smtp" {
			continue
		}
		d := delivery{connUse: 1, status: m[8]}
		if m[2] != "" {
			d.connUse, _ = strconv.Atoi(m[2])
		}
		d.delay, _ = strconv.ParseFloat(m[3], 64)
		for i := range 4 {
			d.delays[i], _ = strconv.ParseFloat(m[4+i], 64)
		}
		if id, ok := ids[m[1]]; ok && d.status == "sent" {
			out[id] = d
		}
	}
	return out
}

func (p *phaseResult) summarize(s *stream, dels map[string]delivery) {
	var delay []float64
	var parts [4][]float64
	for _, id := range p.ids {
		d, ok := dels[id]
		if !ok {
			continue
		}
		p.delivered++
		if d.connUse >= 2 {
			p.reused++
		}
		delay = append(delay, d.delay)
		for i := range parts {
			parts[i] = append(parts[i], d.delays[i])
		}
	}
	if len(delay) == 0 {
		return
	}
	sort.Float64s(delay)
	p.delayMax = delay[len(delay)-1]
	p.delayMedian = delay[len(delay)/2]
	for i := range parts {
		sort.Float64s(parts[i])
		p.delaysMedian[i] = parts[i][len(parts[i])/2]
	}
}

func (p *phaseResult) line(stats map[int]pfx.Stats) string {
	s := fmt.Sprintf("%-13s %d sent, %d delivered (smtp's log), %d over reused connections, delay median %.2fs max %.2fs (delays= medians %g/%g/%g/%g), %d smtp warnings",
		p.name+":", len(p.ids), p.delivered, p.reused, p.delayMedian, p.delayMax,
		p.delaysMedian[0], p.delaysMedian[1], p.delaysMedian[2], p.delaysMedian[3], p.smtpWarnings)
	if p.daemon.pid != 0 || !p.daemon.start.IsZero() {
		st := stats[p.daemon.pid]
		s += fmt.Sprintf("; served by %s (its statistics lines: domain hits %d miss %d, address hits %d miss %d)",
			p.daemon, st.DestHits, st.DestMiss, st.EndpHits, st.EndpMiss)
	}
	if p.name == "removed" {
		s += fmt.Sprintf("; the goscache started before dpkg -r still ran after it: %v", p.orphan)
	}
	if strings.Contains(p.dpkg, "Processing triggers for postfix") {
		s += "; dpkg ran Postfix's trigger"
	}
	return s
}

// statsByPid adds up the statistics lines of each cache daemon process.
func statsByPid(lines []pfx.LogLine) map[int]pfx.Stats {
	by := map[int][]pfx.LogLine{}
	for _, l := range lines {
		if l.Program == "scache" {
			by[l.Pid] = append(by[l.Pid], l)
		}
	}
	out := map[int]pfx.Stats{}
	for pid, ls := range by {
		out[pid] = pfx.ParseStats(ls, "scache")
	}
	return out
}

// phaseStartLine is the index of the first log line of phase name: the
// first line of the second its phase began in (log lines have whole
// seconds), or len(lines).
func phaseStartLine(lines []pfx.LogLine, phases []*phaseResult, name string) int {
	for _, p := range phases {
		if p.name != name {
			continue
		}
		stamp := p.began.Format(time.Stamp)
		for i, l := range lines {
			if len(l.Raw) >= len(stamp) && logStampNotBefore(l.Raw[:len(stamp)], stamp) {
				return i
			}
		}
	}
	return len(lines)
}

// logStampNotBefore compares two "Jan _2 15:04:05" stamps of the same
// year (postlogd pads the day with a zero, syslog with a space: time.Parse
// takes both for "_2").
func logStampNotBefore(a, b string) bool {
	ta, err1 := time.Parse(time.Stamp, a)
	tb, err2 := time.Parse(time.Stamp, b)
	if err1 != nil || err2 != nil {
		return false
	}
	return !ta.Before(tb)
}

// logTime is the time of a log line ("Mmm dd hh:mm:ss ..."), in the
// current year; the zero time when it has none.
func logTime(raw string) time.Time {
	if len(raw) < len(time.Stamp) {
		return time.Time{}
	}
	ts, err := time.ParseInLocation(time.Stamp, raw[:len(time.Stamp)], time.Local)
	if err != nil {
		return time.Time{}
	}
	return ts.AddDate(time.Now().Year(), 0, 0)
}

type warningCount struct {
	text string
	n    int
}

var pidRE = regexp.MustCompile(`\[\d+\]|pid \d+`)

// countWarnings groups the warning and fatal lines by program and text
// (pids masked), most frequent first.
func countWarnings(lines []pfx.LogLine) []warningCount {
	counts := map[string]int{}
	for _, l := range lines {
		if strings.HasPrefix(l.Text, "warning: ") || strings.HasPrefix(l.Text, "fatal: ") {
			counts["postfix/"+l.Program+": "+pidRE.ReplaceAllString(l.Text, "[N]")]++
		}
	}
	var out []warningCount
	for k, n := range counts {
		out = append(out, warningCount{k, n})
	}
	slices.SortFunc(out, func(a, b warningCount) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.text, b.text)
	})
	return out
}
