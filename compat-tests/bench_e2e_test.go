//go:build compat

package compattest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/goscache/goscache/compat-tests/e2ebench"
	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/compat-tests/sink"
)

// TestBenchE2E is "make bench-e2e" (issue 18 §4): the same mail delivered
// through real Postfix three ways, no connection cache, Postfix's scache and
// goscache, to sinks that answer every command after a WAN round trip, some
// over STARTTLS and one closing idle connections. The ways run one after
// the other, interleaved in each round. It runs only with BENCH_E2E=1 (it
// is a benchmark, not a test) and writes BENCH_E2E_OUT (docs/bench/e2e.json).
//
// Knobs (environment): BENCH_E2E_MSGS (5000), BENCH_E2E_ROUNDS (3),
// BENCH_E2E_RTT (100ms), BENCH_E2E_DESTS (24), BENCH_E2E_PROCS (50),
// BENCH_E2E_PORT (4220: sinks PORT..PORT+2, smtpd PORT+10..PORT+12),
// BENCH_E2E_WAYS (none,scache,goscache), BENCH_E2E_APPEND (add rounds to
// the results file), BENCH_E2E_COMMAND (the command recorded).
func TestBenchE2E(t *testing.T) {
	if os.Getenv("BENCH_E2E") == "" {
		t.Skip("a benchmark: run with BENCH_E2E=1 (make bench-e2e)")
	}
	requirePostfix(t)
	cfg := e2ebench.Config{
		Messages:        envInt("BENCH_E2E_MSGS", 5000),
		Destinations:    envInt("BENCH_E2E_DESTS", 24),
		RTTMs:           int(envDuration("BENCH_E2E_RTT", 100*time.Millisecond) / time.Millisecond),
		ProcessLimit:    envInt("BENCH_E2E_PROCS", 50),
		DestConcurrency: 20,
		CacheTimeLimit:  "2s",
		Injectors:       16,
		Rounds:          envInt("BENCH_E2E_ROUNDS", 3),
		TLSReuse:        true,
		IdleCloseDests:  1,
		IdleCloseMs:     1000,
	}
	cfg.TLSDestinations = cfg.Destinations / 4
	port := envInt("BENCH_E2E_PORT", 4220)
	out := envOr("BENCH_E2E_OUT", filepath.Join("..", "docs", "bench", "e2e.json"))
	ways := strings.Split(envOr("BENCH_E2E_WAYS", strings.Join(e2ebench.Ways, ",")), ",")

	bin, err := goscacheBinary()
	if err != nil {
		t.Fatalf("goscache: %v", err)
	}
	rep := &e2ebench.Report{
		Command: envOr("BENCH_E2E_COMMAND", "make bench-e2e"),
		Config:  cfg,
		Machine: e2eMachine(),
	}
	// BENCH_E2E_APPEND=1 adds this invocation's rounds to the results
	// already in out, numbered after them, when the workload is the same.
	first := 0
	if os.Getenv("BENCH_E2E_APPEND") != "" {
		old, err := e2ebench.Read(out)
		if err != nil {
			t.Fatal(err)
		}
		want := old.Config
		want.Rounds = cfg.Rounds
		if want != cfg {
			t.Fatalf("BENCH_E2E_APPEND: %s was measured with %+v, this run is %+v", out, old.Config, cfg)
		}
		for _, r := range old.Runs {
			first = max(first, r.Round)
		}
		old.Config.Rounds += cfg.Rounds
		old.Command = rep.Command
		rep = old
	}
	sides := map[string]*e2eSide{}
	for i, way := range ways {
		daemon := ""
		if way == e2ebench.WayGoscache {
			daemon = bin
		}
		sides[way] = newE2ESide(t, way, port+i, port+10+i, daemon, cfg)
	}
	for round := range cfg.Rounds {
		for k := range ways {
			way := ways[(first+round+k)%len(ways)]
			r := sides[way].run(t, cfg)
			r.Round, r.Order = first+round+1, k+1
			t.Logf("round %d %-8s %5d msgs in %6.1fs (%.1f msg/s, inject %.1fs) sessions %d tls %d reused %d hits %d dead %d delay p50 %.2fs p99 %.2fs cache cpu %.2fs (%d pids) load %s",
				r.Round, r.Way, r.Delivered, r.Seconds, r.MsgsPerSec(), r.InjectSeconds, r.Sessions, r.TLS,
				r.Reused, r.Hits, r.DeadHandouts, r.DelayP50, r.DelayP99, r.CacheCPU, r.CachePids, r.Load)
			rep.Runs = append(rep.Runs, r)
			rep.Machine.LoadAfter = loadavg()
			if err := e2ebench.Write(out, rep); err != nil { // after every run: a partial run still leaves figures
				t.Fatal(err)
			}
		}
	}
	for _, row := range e2ebench.Summarize(rep) {
		t.Logf("median %-8s %.1f msg/s (x%.2f of scache) sessions %.0f (x%.2f) tls %.0f dead %.0f delay p50 %.2fs p99 %.2fs cpu %.2fs",
			row.Way, row.MsgsPerSec, row.RatioMsgs, row.Sessions, row.RatioSessions, row.TLS, row.DeadHandouts, row.DelayP50, row.DelayP99, row.CacheCPU)
	}
	t.Logf("wrote %s", out)
}

// e2eSide is one way: a Postfix instance with an smtpd to inject into, and
// its sink.
type e2eSide struct {
	way    string
	prog   string // the cache daemon's process name
	inject string
	inst   *pfx.Instance
	sink   *sink.Sink
	domain []string
	seq    atomic.Int64
}

func newE2ESide(t *testing.T, way string, port, injectPort int, daemon string, cfg e2ebench.Config) *e2eSide {
	t.Helper()
	root := filepath.Join(os.TempDir(), fmt.Sprintf("goscache-e2e-%s-%d", way, os.Getpid()))
	os.RemoveAll(root)
	s := &e2eSide{way: way, prog: "scache", inject: fmt.Sprintf("127.0.0.1:%d", injectPort)}
	transports := map[string]string{}
	var dests, addrs []string
	for i := range cfg.Destinations {
		d := fmt.Sprintf("d%02d.e2e.test", i)
		s.domain = append(s.domain, d)
		tr := "smtp"
		if i < cfg.TLSDestinations {
			tr = "smtptls"
		}
		transports[d] = tr + ":" + nexthop(i, port)
		dests = append(dests, fmt.Sprintf("127.0.0.%d", 10+i))
		addrs = append(addrs, sinkAddr(i, port))
	}
	main := map[string]string{
		"default_process_limit":                 strconv.Itoa(cfg.ProcessLimit),
		"default_destination_concurrency_limit": strconv.Itoa(cfg.DestConcurrency),
		"smtp_connection_cache_destinations":    strings.Join(dests, " "),
		"smtp_connection_cache_on_demand":       "yes",
		"smtp_connection_cache_time_limit":      cfg.CacheTimeLimit,
		"smtp_tls_connection_reuse":             "yes",
		"tlsproxy_client_security_level":        "may",
		"mynetworks":                            "127.0.0.0/8",
		"smtpd_banner":                          "$myhostname ESMTP e2e",
		"max_idle":                              "300s",
		"smtpd_client_restrictions":             "check_client_access inline:{ { 127.0.0.1 = HOLD } }",
	}
	if way == e2ebench.WayNone {
		main["smtp_connection_cache_destinations"] = ""
		main["smtp_connection_cache_on_demand"] = "no"
		main["smtp_tls_connection_reuse"] = "no"
	}
	opts := pfx.Options{
		Root: root, DaemonDir: *flagDaemonDir, CommandDir: *flagCommandDir,
		Main: main, Transports: transports,
		MasterCF: s.inject + " inet n - n - - smtpd\n" +
			"smtptls unix - - n - - smtp\n  -o smtp_tls_security_level=encrypt\n",
	}
	if daemon != "" {
		s.prog = "goscache"
		opts.Scache = daemon
	}
	inst := createInstance(t, way, opts)
	s.inst = inst
	tlsConf, err := sink.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := sink.Start(sink.Config{Addrs: addrs, TLS: tlsConf, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.sink = sk
	t.Cleanup(func() { sk.Close() })
	if err := inst.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// behave sets the sinks' behaviour: the round trip on every reply, and the
// last destination closing connections idle for cfg.IdleCloseMs.
func (s *e2eSide) behave(cfg e2ebench.Config) {
	rtt := time.Duration(cfg.RTTMs) * time.Millisecond
	addrs := s.sink.Addrs()
	for i, a := range addrs {
		b := sink.Behavior{Delay: rtt, ReplyDelay: rtt}
		if i >= len(addrs)-cfg.IdleCloseDests {
			b.IdleClose = time.Duration(cfg.IdleCloseMs) * time.Millisecond
		}
		s.sink.SetBehavior(a, b)
	}
}

// cacheTicks returns the CPU ticks of the running cache daemon processes.
func (s *e2eSide) cacheTicks() map[int]int64 {
	m := map[int]int64{}
	for _, pid := range s.inst.Pids(s.prog) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if n, err := e2ebench.StatTicks(b); err == nil {
				m[pid] = n
			}
		}
	}
	return m
}

// run delivers cfg.Messages through the side and measures it.
func (s *e2eSide) run(t *testing.T, cfg e2ebench.Config) e2ebench.Run {
	t.Helper()
	ctx := t.Context()
	s.sink.Reset()
	s.behave(cfg)
	logOff := s.inst.LogSize()
	var cpu e2ebench.CPUTracker
	cpu.Start(s.cacheTicks())
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tk.C:
				cpu.Sample(s.cacheTicks())
			}
		}
	})

	// The mail is injected on hold (smtpd_client_restrictions HOLD), then
	// released at once: on a loaded machine smtpd and cleanup cannot
	// inject faster than the sinks take it, and the run would measure the
	// injection instead of the delivery. The clock starts at the release.
	jobs := make(chan int, cfg.Messages)
	for i := range cfg.Messages {
		jobs <- i
	}
	close(jobs)
	var injected atomic.Int64
	injectStart := time.Now()
	var wg sync.WaitGroup
	for range cfg.Injectors {
		wg.Go(func() { injected.Add(int64(s.injectAll(ctx, t, jobs))) })
	}
	wg.Wait()
	injectSecs := time.Since(injectStart).Seconds()
	for { // cleanup may still be writing the last queue files
		held, err := s.heldCount()
		if err != nil {
			t.Fatal(err)
		}
		if held >= int(injected.Load()) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if out, err := s.inst.Postsuper(ctx, "-H", "ALL"); err != nil {
		t.Fatalf("%s: postsuper -H ALL: %v: %s", s.way, err, out)
	}
	if err := s.inst.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Minute)
	for {
		q, err := s.inst.QueueCount()
		if err == nil && q == 0 && s.sink.Total().Messages >= int(injected.Load()) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: queue not empty after 20 minutes (%d queued, %d of %d delivered)", s.way, q, s.sink.Total().Messages, injected.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	secs := time.Since(start).Seconds()
	// The cached connections expire (smtp_connection_cache_time_limit),
	// and the daemon logs its statistics (every second, pfx's
	// connection_cache_status_update_time).
	time.Sleep(4 * time.Second)
	close(stopSampling)
	sampler.Wait()
	cpu.Sample(s.cacheTicks())
	cpuSecs, pids := cpu.Seconds()

	lines, err := s.inst.LogSince(logOff)
	if err != nil {
		t.Fatal(err)
	}
	var smtpLines []string
	for _, l := range lines {
		if l.Program == "smtp" {
			smtpLines = append(smtpLines, l.Raw)
		}
	}
	var problems []string
	for _, l := range pfx.Problems(lines, "smtp", "scache", "goscache", "master", "qmgr", "tlsproxy") {
		if !strings.Contains(l, "TLS server role is disabled") { // smtp_tls_connection_reuse's tlsproxy, expected
			problems = append(problems, l)
		}
	}
	if p := problems; len(p) > 0 {
		for i, l := range p {
			if i == 10 {
				t.Logf("%s: ... %d more", s.way, len(p)-10)
				break
			}
			t.Logf("%s: %s", s.way, l)
		}
	}
	st := pfx.ParseStats(lines, "scache", "goscache") // goscache in scache's place logs as postfix/scache
	delays := e2ebench.AfterQueueDelays(smtpLines)
	total := e2ebench.Delays(smtpLines)
	c := s.sink.Total()
	r := e2ebench.Run{
		Way: s.way, Injected: int(injected.Load()), Delivered: c.Messages,
		Seconds: secs, InjectSeconds: injectSecs,
		Sessions: c.Sessions, TLS: c.TLS, Conns: c.Conns,
		Reused: e2ebench.Reused(smtpLines), Hits: st.DestHits + st.EndpHits,
		DelayP50: e2ebench.Percentile(delays, 50), DelayP99: e2ebench.Percentile(delays, 99),
		TotalDelayP50: e2ebench.Percentile(total, 50), TotalDelayP99: e2ebench.Percentile(total, 99),
		CacheCPU: cpuSecs, CachePids: pids, Load: loadavg(),
	}
	if s.way != e2ebench.WayNone {
		r.DeadHandouts = r.Hits - r.Reused
	} else {
		r.CacheCPU, r.CachePids = 0, 0
	}
	if dups := sink.Duplicates(s.sink.Messages()); len(dups) > 0 {
		t.Errorf("%s: %d messages delivered twice", s.way, len(dups))
	}
	if len(delays) != c.Messages {
		t.Logf("%s: %d delay= fields for %d messages", s.way, len(delays), c.Messages)
	}
	return r
}

// heldCount returns the number of queue files in the hold queue.
func (s *e2eSide) heldCount() (int, error) {
	ents, err := os.ReadDir(filepath.Join(s.inst.QueueDir, "hold"))
	if err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() {
			sub, err := os.ReadDir(filepath.Join(s.inst.QueueDir, "hold", e.Name()))
			if err != nil {
				return 0, err
			}
			n += len(sub)
		} else {
			n++
		}
	}
	return n, nil
}

// injectAll submits the jobs it takes over SMTP connections to the side's
// smtpd (a new one every 100 messages) and returns how many it queued.
func (s *e2eSide) injectAll(ctx context.Context, t *testing.T, jobs <-chan int) int {
	var c *smtp.Client
	n, sent := 0, 0
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for j := range jobs {
		seq := s.seq.Add(1)
		to := fmt.Sprintf("rcpt%d@%s", seq, s.domain[j%len(s.domain)])
		body := fmt.Sprintf("From: <sender@e2e.test>\r\nTo: <%s>\r\nSubject: e2e %d\r\nMessage-ID: <e2e.%s.%d@e2e.test>\r\n\r\ne2e message %d\r\n", to, seq, s.way, seq, seq)
		for attempt := 0; ; attempt++ {
			if ctx.Err() != nil {
				return sent
			}
			if attempt == 20 {
				t.Errorf("%s: could not inject message %d", s.way, seq)
				break
			}
			if c == nil || n >= 100 {
				if c != nil {
					_ = c.Quit()
					c.Close()
				}
				var err error
				if c, err = smtp.Dial(s.inject); err == nil {
					err = c.Hello("client.e2e.test")
				}
				if err != nil {
					if c != nil {
						c.Close()
					}
					c = nil
					time.Sleep(100 * time.Millisecond)
					continue
				}
				n = 0
			}
			n++
			if err := c.SendMail("sender@e2e.test", []string{to}, strings.NewReader(body)); err != nil {
				c.Close()
				c = nil
				continue
			}
			sent++
			break
		}
	}
	return sent
}

func e2eMachine() e2ebench.Machine {
	m := e2ebench.Machine{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Cores:      runtime.NumCPU(),
		Postfix:    postfixVersion() + " (Debian package)",
		GoVersion:  runtime.Version(),
		LoadBefore: loadavg(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryMB = kb / 1024
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}
