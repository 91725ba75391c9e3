//go:build compat

package compattest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/compat-tests/sink"
)

// The sink's addresses: 127.0.0.10 to 127.0.0.21, one port per variant so
// both variants could share the addresses; besides them [::1] on the same
// port (when this host has it) and an LMTP socket in the instance's root.
const sinkHosts = 12

// Next hops that are not one of the 127.0.0.x addresses, for scenario.hosts.
const (
	hostIPv6 = -1 // smtp:[::1]:port
	hostLMTP = -2 // lmtp:unix:<instance root>/lmtp.sock (Dovecot's LMTP setup)
)

// lmtpSocket is where the sink's LMTP server listens for the instance in root.
func lmtpSocket(root string) string { return filepath.Join(root, "lmtp.sock") }

// route returns the transport:nexthop of a domain whose next hops are hosts.
func route(hosts []int, port int, root string) string {
	switch {
	case len(hosts) == 1 && hosts[0] == hostLMTP:
		return "lmtp:unix:" + lmtpSocket(root)
	case len(hosts) == 1 && hosts[0] == hostIPv6:
		return fmt.Sprintf("smtp:[::1]:%d", port)
	}
	var hops []string
	for _, h := range hosts {
		hops = append(hops, nexthop(h, port))
	}
	return "smtp:" + strings.Join(hops, ", ")
}

// ipv6Loopback reports why this host cannot listen on [::1], or nil.
var ipv6Loopback = sync.OnceValue(func() error {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return err
	}
	return l.Close()
})

func sinkAddr(i, port int) string { return fmt.Sprintf("127.0.0.%d:%d", 10+i, port) }

// nexthop returns "[127.0.0.1x]:port" for sink address i.
func nexthop(i, port int) string { return fmt.Sprintf("[127.0.0.%d]:%d", 10+i, port) }

// variant is one side of the comparison: a Postfix instance whose scache
// service runs either Postfix's scache or goscache, and its sink.
type variant struct {
	name     string
	port     int
	inst     *pfx.Instance
	sink     *sink.Sink
	programs []string // log program names of the cache daemon
}

// scenario is one end-to-end run. run submits mail and disturbs the system;
// the harness then waits for every message, lets cached sessions expire and
// collects the figures.
type scenario struct {
	name string
	// hosts maps domain -> sink address indexes (a next-hop list), or
	// one of hostIPv6 and hostLMTP.
	hosts map[string][]int
	// ipv6 marks a scenario that needs [::1]: skipped, and said so in the
	// table, where the host has no IPv6 loopback.
	ipv6 bool
	// main holds main.cf settings for this scenario only.
	main map[string]string
	// behavior sets sink behaviour per address index.
	behavior map[int]sink.Behavior
	// run submits the mail; it returns the number of messages sent.
	run func(ctx context.Context, t *testing.T, v *variant, send sender) int
	// expect are regexps of warning lines this scenario may produce (from
	// smtp, the cache daemon or master).
	expect []string
	// minReuse, when set, requires messages > sessions (reuse happened).
	minReuse bool
	// qmgrDriven: the queue manager decides when smtp(8) uses the cache
	// (on-demand caching, from its timing), so the number of sessions is
	// not the daemon's doing; the daemons are compared by the misses of the
	// lookups smtp(8) did make (each a connection opened although caching
	// was on).
	qmgrDriven bool
	// slack is how many more SMTP sessions than scache goscache may open
	// here, for a cause that is not the daemon's (each scenario says which).
	// Zero where the run is deterministic: with a destination concurrency of
	// 1, smtp(8) saves a connection before the queue manager learns that the
	// delivery is done and starts the next one, so every lookup after the
	// first finds it.
	slack int
	// sinkTimed: the sink closes idle connections on its own timer, so
	// whether a wave finds the previous wave's sessions alive depends on how
	// long the queue manager took to deliver it, not on the daemon; the
	// daemons are also compared by the lookups that handed smtp(8) a
	// connection it could not use (goscache checks liveness and should hand
	// out none).
	sinkTimed bool
	// reuseLimit, when set, is smtp_connection_reuse_count_limit: smtp(8)
	// does not cache a connection it has reused that often, so none may
	// carry more than reuseLimit+1 messages, and goscache's connections
	// must carry exactly as many as scache's (the same retirements).
	reuseLimit int
}

type sender func(domain string, n int) int

// cacheTTL is how long smtp(8) keeps a connection cached (baseMain).
const cacheTTL = "5s"

type result struct {
	scenario, variant string
	sent              int
	counts            sink.Counts
	stats             lookupStats
	reused            int   // deliveries over a connection from the cache (conn_use >= 2)
	perConn           []int // messages per SMTP/LMTP connection (sink), largest first
	perConnLog        []int // the same from the client's conn_use log fields
	dups              []string
	lost              int
	problems          []string
	elapsed           time.Duration
}

// lookupStats are the daemon's statistics lines added up.
type lookupStats struct{ pfx.Stats }

// deadHandouts is the number of lookup hits that gave smtp(8) a connection
// it delivered nothing over: it found the connection closed and dropped it.
// It is negative when statistics lines are missing (a killed daemon logs
// none for its last interval).
func (r result) deadHandouts() int {
	return r.stats.DestHits + r.stats.EndpHits - r.reused
}

func (r result) perSession() float64 {
	if r.counts.Sessions == 0 {
		return 0
	}
	return float64(r.counts.Messages) / float64(r.counts.Sessions)
}

// baseMain is applied to every instance. smtp(8) matches
// smtp_connection_cache_destinations against the bare next-hop host of the
// transport, here the sink addresses: caching is then on from the first
// delivery instead of depending on the queue manager's timing.
var baseMain = map[string]string{
	"smtp_connection_cache_destinations": "127.0.0.10 127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14 " +
		"127.0.0.15 127.0.0.16 127.0.0.17 127.0.0.18 127.0.0.19 127.0.0.20 127.0.0.21 " +
		// A list entry with a colon names a table: ::1 only fits as a key.
		"inline:{ { ::1 = ipv6 } }",
	// One delivery at a time per destination: each wave's deliveries still
	// go to whichever smtp(8) process is free, and the destinations of a
	// scenario run in parallel, so the cache is shared between processes;
	// but no lookup races the save of the connection it should find, so
	// how many connections a run opens does not depend on scheduling and
	// the two daemons compare exactly (see scenario.slack).
	"initial_destination_concurrency":       "1",
	"default_destination_concurrency_limit": "1",
	"smtp_connection_cache_on_demand":       "yes",
	"smtp_tls_security_level":               "none",
	"smtp_tls_connection_reuse":             "no",
	// Longer than Postfix's 2s: on a loaded machine (three releases at
	// once on two cores) the next wave's first delivery can come more than
	// 2s after the last one, and whether a cached connection outlived
	// that gap would be the machine's doing, not the daemon's.
	"smtp_connection_cache_time_limit": cacheTTL,
	"lmtp_connection_cache_time_limit": cacheTTL,
	"connection_cache_ttl_limit":       cacheTTL,
}

func scenarios() []scenario {
	waves := func(domains []string, waves, perWave int, gap time.Duration) func(context.Context, *testing.T, *variant, sender) int {
		return func(ctx context.Context, t *testing.T, v *variant, send sender) int {
			n := 0
			for w := range waves {
				for _, d := range domains {
					n += send(d, perWave)
				}
				if w < waves-1 {
					time.Sleep(gap)
				}
			}
			return n
		}
	}
	// disrupted sends 10 messages to domain three times, and calls disrupt
	// while the first ten are being delivered, once two have arrived: the
	// cache daemon has then served lookups (master throttles a service
	// whose child dies before it served anything).
	disrupted := func(domain string, disrupt func(context.Context, *testing.T, *variant)) func(context.Context, *testing.T, *variant, sender) int {
		return func(ctx context.Context, t *testing.T, v *variant, send sender) int {
			n := send(domain, 10)
			for deadline := time.Now().Add(30 * time.Second); v.sink.Total().Messages < 2 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			disrupt(ctx, t, v)
			n += send(domain, 10)
			time.Sleep(700 * time.Millisecond)
			return n + send(domain, 10)
		}
	}
	return []scenario{
		{
			name:     "many-domains",
			hosts:    map[string][]int{"d1.test": {0}, "d2.test": {1}, "d3.test": {2}},
			run:      waves([]string{"d1.test", "d2.test", "d3.test"}, 4, 8, 700*time.Millisecond),
			minReuse: true,
		},
		{
			// Debian's default: no cache destinations; the queue
			// manager turns caching on when deliveries queue up.
			name:       "on-demand",
			hosts:      map[string][]int{"d11.test": {0}},
			main:       map[string]string{"smtp_connection_cache_destinations": ""},
			run:        waves([]string{"d11.test"}, 3, 16, 500*time.Millisecond),
			qmgrDriven: true,
		},
		{
			name:     "refusing-first-nexthop",
			hosts:    map[string][]int{"d4.test": {3, 4}},
			behavior: map[int]sink.Behavior{3: {RefuseEvery: 2}},
			run:      waves([]string{"d4.test"}, 4, 10, 700*time.Millisecond),
			expect:   []string{`refused to talk to me: 421`},
			minReuse: true,
		},
		{
			name:     "shared-nexthop",
			hosts:    map[string][]int{"d5.test": {5}, "d6.test": {5}},
			run:      waves([]string{"d5.test", "d6.test"}, 4, 6, 700*time.Millisecond),
			minReuse: true,
			// The first delivery to d6 opens a connection of its own when
			// d5's connection to the shared address is in use just then.
			slack: 1,
		},
		{
			name:  "sink-closes-idle",
			hosts: map[string][]int{"d7.test": {6}},
			// 1s idle: on a loaded machine two deliveries of one wave
			// came more than 400ms apart, and the sink closed the
			// connection in the middle of the wave. The waves are 2.5s
			// apart, well past the idle close and within the 5s ttl, so
			// the cache still holds the closed connection.
			behavior:  map[int]sink.Behavior{6: {IdleClose: time.Second}},
			run:       waves([]string{"d7.test"}, 4, 8, 2500*time.Millisecond),
			minReuse:  true,
			sinkTimed: true,
			// A wave that the queue manager delivers slowly ends within
			// IdleClose of the next wave's start, which then finds its
			// connection still open.
			slack: 1,
		},
		{
			name:  "reload-mid-run",
			hosts: map[string][]int{"d8.test": {7}},
			run: disrupted("d8.test", func(ctx context.Context, t *testing.T, v *variant) {
				if err := v.inst.Reload(ctx); err != nil {
					t.Error(err)
				}
			}),
			expect:   []string{`problem talking to service private/scache`, `reload -- version`},
			minReuse: true,
			// The cached connection is lost if the reload comes while it
			// is idle in the cache, kept if while smtp(8) is using it.
			slack: 1,
		},
		{
			name:  "cache-killed-mid-run",
			hosts: map[string][]int{"d9.test": {8}},
			run:   disrupted("d9.test", func(_ context.Context, t *testing.T, v *variant) { killCache(t, v) }),
			expect: []string{`problem talking to service private/scache`, `disabling connection caching`,
				`killed by signal 9`, `connect to private/scache`, `unexpected protocol`},
			minReuse: true,
			// The cached connection is lost if the kill comes while it is
			// idle in the cache, kept if while smtp(8) is using it.
			slack: 1,
		},
		{
			name:  "tls-reuse",
			hosts: map[string][]int{"d10.test": {9}},
			main: map[string]string{
				"smtp_tls_security_level":   "encrypt",
				"smtp_tls_connection_reuse": "yes",
			},
			run: waves([]string{"d10.test"}, 4, 8, 700*time.Millisecond),
			// Debian's tlsproxy says so when only its client role is used.
			expect:   []string{`tlsproxy\[\d+\]: warning: TLS server role is disabled`},
			minReuse: true,
		},
		{
			// Dovecot's setup: lmtp(8) delivers to an LMTP server on a
			// UNIX-domain socket, and the cache holds connections under
			// unix-domain endpoint labels.
			name:  "lmtp-unix",
			hosts: map[string][]int{"d13.test": {hostLMTP}},
			// lmtp_connection_cache_destinations names the socket
			// (newVariant), as lmtp(8) matches the path.
			run:      waves([]string{"d13.test"}, 4, 8, 700*time.Millisecond),
			minReuse: true,
		},
		{
			name:     "ipv6-loopback",
			hosts:    map[string][]int{"d12.test": {hostIPv6}},
			ipv6:     true,
			run:      waves([]string{"d12.test"}, 4, 8, 700*time.Millisecond),
			minReuse: true,
		},
		{
			// smtp(8) stops caching a connection once it has reused it 3
			// times; with one delivery at a time every connection carries
			// 4 messages, with either daemon. One burst: with waves, the
			// connection left with 2 messages could outlive its ttl
			// while a loaded machine submits the next wave.
			name:       "reuse-count-limit",
			hosts:      map[string][]int{"d14.test": {10}},
			main:       map[string]string{"smtp_connection_reuse_count_limit": "3"},
			run:        waves([]string{"d14.test"}, 1, 24, 0),
			minReuse:   true,
			reuseLimit: 3,
		},
		{
			// smtp(8) stops reusing a connection once the second after
			// the one it opened it in is over (whole seconds), and gives
			// the daemon a ttl that ends then: each wave, 2.5s after the
			// last, needs a new connection, and reuses it while its
			// deliveries last. How many fit is the machine's timing, not
			// the daemon's: each of the three waves may cost either side
			// a session (a CI run on a loaded machine once saw scache at
			// 3, goscache at 5 with four closer waves).
			name:     "reuse-time-limit",
			hosts:    map[string][]int{"d15.test": {11}},
			main:     map[string]string{"smtp_connection_reuse_time_limit": "1s"},
			run:      waves([]string{"d15.test"}, 3, 6, 2500*time.Millisecond),
			minReuse: true,
			slack:    3,
		},
	}
}

// killCache sends SIGKILL to the running cache daemon of v (by pid). It is
// an error when there is none: the scenario would then test nothing.
func killCache(t *testing.T, v *variant) {
	t.Helper()
	killed := 0
	var pids map[string][]int
	// The daemon normally runs by now (smtp(8) is delivering); give
	// master(8) a moment if it was just restarting it.
	for range 20 {
		pids = map[string][]int{"scache": v.inst.Pids("scache"), "goscache": v.inst.Pids("goscache")}
		if len(pids["scache"])+len(pids["goscache"]) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range []string{"scache", "goscache"} {
		for _, pid := range pids[name] {
			t.Logf("%s: kill -9 %s[%d]", v.name, name, pid)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Errorf("%s: kill %s[%d]: %v", v.name, name, pid, err)
				continue
			}
			killed++
		}
	}
	if killed == 0 {
		t.Errorf("%s: no cache daemon process under master[%d] to kill", v.name, v.inst.MasterPid())
	}
}

func TestEndToEnd(t *testing.T) {
	requirePostfix(t)
	ctx := t.Context()
	variants := []*variant{newVariant(t, "scache", *flagPort, "")}
	if bin, err := goscacheBinary(); err == nil {
		variants = append(variants, newVariant(t, "goscache", *flagPort+1, bin))
	} else if errors.Is(err, errNoGoscache) && !inCI() {
		t.Logf("goscache side skipped: %v", err)
	} else {
		t.Fatalf("goscache: %v", err)
	}

	var results []result
	var notes []string
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			if err := ipv6Loopback(); sc.ipv6 && err != nil {
				notes = append(notes, fmt.Sprintf("%s: NOT RUN: this host has no IPv6 loopback (%v)", sc.name, err))
				t.Skipf("no IPv6 loopback here: %v", err)
			}
			// Both variants run at the same time, each with its own
			// instance and sink port, so they see the same machine load.
			rs := make([]result, len(variants))
			var wg sync.WaitGroup
			for i, v := range variants {
				wg.Go(func() { rs[i] = runScenario(ctx, t, sc, v) })
			}
			wg.Wait()
			checkScenario(t, sc, rs)
			results = append(results, rs...)
		})
	}
	printTable(t, results, notes)
}

func newVariant(t *testing.T, name string, port int, bin string) *variant {
	t.Helper()
	root := filepath.Join(os.TempDir(), fmt.Sprintf("goscache-compat-%s-%d", name, os.Getpid()))
	os.RemoveAll(root)
	transports := map[string]string{}
	for _, sc := range scenarios() {
		for d, hosts := range sc.hosts {
			transports[d] = route(hosts, port, root)
		}
	}
	main := maps.Clone(baseMain)
	// lmtp(8) matches the socket's path (a string-list entry starting
	// with / would name a pattern file, so it goes in as a table key).
	main["lmtp_connection_cache_destinations"] = "inline:{ { " + lmtpSocket(root) + " = lmtp } }"
	if ipv6Loopback() == nil {
		main["inet_protocols"] = "all"
	}
	inst := createInstance(t, name, pfx.Options{
		Root: root, DaemonDir: *flagDaemonDir, CommandDir: *flagCommandDir,
		Scache: bin, Main: main, Transports: transports,
	})
	tlsConf, err := sink.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := range sinkHosts {
		addrs = append(addrs, sinkAddr(i, port))
	}
	if ipv6Loopback() == nil {
		addrs = append(addrs, fmt.Sprintf("[::1]:%d", port))
	}
	addrs = append(addrs, "unix:"+lmtpSocket(root))
	sk, err := sink.Start(sink.Config{Addrs: addrs, TLS: tlsConf, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close() })
	if err := inst.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	progs := []string{"scache"}
	if bin != "" {
		progs = append(progs, "goscache")
	}
	return &variant{name: name, port: port, inst: inst, sink: sk, programs: progs}
}

func runScenario(ctx context.Context, t *testing.T, sc scenario, v *variant) result {
	t.Helper()
	start := time.Now()
	// Scenario settings on top of the base, then a reload so every daemon
	// (the cache daemon included) starts fresh.
	settings := map[string]string{}
	for k, val := range baseMain {
		settings[k] = val
	}
	for k, val := range sc.main {
		settings[k] = val
	}
	var args []string
	for k, val := range settings {
		args = append(args, k+"="+val)
	}
	if out, err := v.inst.Postconf(ctx, append([]string{"-e"}, args...)...); err != nil {
		t.Errorf("%s: postconf: %v: %s", v.name, err, out)
		return result{scenario: sc.name, variant: v.name}
	}
	// What another scenario set and this one does not goes back to
	// Postfix's default.
	var unset []string
	for _, other := range scenarios() {
		for k := range other.main {
			if _, ok := settings[k]; !ok && !slices.Contains(unset, k) {
				unset = append(unset, k)
			}
		}
	}
	if len(unset) > 0 {
		if out, err := v.inst.Postconf(ctx, append([]string{"-X"}, unset...)...); err != nil {
			t.Errorf("%s: postconf -X: %v: %s", v.name, err, out)
			return result{scenario: sc.name, variant: v.name}
		}
	}
	if err := v.inst.Reload(ctx); err != nil {
		t.Error(err)
		return result{scenario: sc.name, variant: v.name}
	}
	time.Sleep(1500 * time.Millisecond)
	v.sink.Reset()
	for i, b := range sc.behavior {
		v.sink.SetBehavior(sinkAddr(i, v.port), b)
	}
	off := v.inst.LogSize()

	seq := 0
	// send submits n messages to domain, four sendmail processes at a
	// time, so that a wave reaches the queue manager as a burst.
	send := func(domain string, n int) int {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for range n {
			seq++
			id := fmt.Sprintf("%s.%s.%d@compat.test", sc.name, v.name, seq)
			rcpt := fmt.Sprintf("rcpt%d@%s", seq, domain)
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := v.inst.Send(ctx, "sender@compat.test", rcpt, sc.name, id); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return n
	}
	sent := sc.run(ctx, t, v, send)

	// Wait for every message, then for cached sessions to expire and the
	// statistics to be logged.
	held, err := waitDelivered(v.inst, v.sink, sent)
	if err != nil {
		t.Errorf("%s: %v", v.name, err)
	}
	if len(held) > 0 {
		// Postfix's own 60-second hold after a reload (waitDelivered).
		t.Logf("%s: queue files held by qmgr after the reload, flushed: %v", v.name, held)
	}
	ttl, _ := time.ParseDuration(cacheTTL)
	time.Sleep(ttl + 1500*time.Millisecond)

	lines, err := v.inst.LogSince(off)
	if err != nil {
		t.Error(err)
	}
	msgs := v.sink.Messages()
	r := result{
		scenario: sc.name, variant: v.name, sent: sent,
		counts:     v.sink.Total(),
		stats:      lookupStats{pfx.ParseStats(lines, v.programs...)},
		reused:     countReused(lines),
		perConn:    sinkPerConn(msgs),
		perConnLog: logPerConn(lines),
		dups:       sink.Duplicates(msgs),
		elapsed:    time.Since(start),
	}
	r.lost = sent - (len(msgs) - len(r.dups))
	progs := append([]string{"smtp", "lmtp", "master", "tlsproxy", "postlogd", "qmgr"}, v.programs...)
	for _, p := range pfx.Problems(lines, progs...) {
		if !matchesAny(p, sc.expect) {
			r.problems = append(r.problems, p)
		}
	}
	if sv := pfx.Grep(lines, "status=sent", "smtp", "lmtp"); len(sv) != sent {
		t.Logf("%s: %d status=sent lines for %d messages", v.name, len(sv), sent)
	}
	return r
}

// conn_use=N in a delivery status line: the Nth delivery over one SMTP
// connection, so N >= 2 means the connection came from the cache.
var connUseRE = regexp.MustCompile(`, conn_use=(\d+),`)

// connUses returns the conn_use of every delivery smtp(8) or lmtp(8)
// logged (1 where the line has none: a new connection).
func connUses(lines []pfx.LogLine) []int {
	var uses []int
	for _, l := range lines {
		if (l.Program != "smtp" && l.Program != "lmtp") || !strings.Contains(l.Text, "status=sent") {
			continue
		}
		n := 1
		if m := connUseRE.FindStringSubmatch(l.Text); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		uses = append(uses, n)
	}
	return uses
}

// countReused counts deliveries over cached connections.
func countReused(lines []pfx.LogLine) int {
	n := 0
	for _, u := range connUses(lines) {
		if u >= 2 {
			n++
		}
	}
	return n
}

// logPerConn returns how many messages each connection carried, largest
// first, as the client logged them: a connection with n messages logged
// conn_use 1 to n.
func logPerConn(lines []pfx.LogLine) []int {
	atLeast := map[int]int{}
	most := 0
	for _, u := range connUses(lines) {
		atLeast[u]++
		most = max(most, u)
	}
	var per []int
	for k := most; k >= 1; k-- {
		for range atLeast[k] - atLeast[k+1] {
			per = append(per, k)
		}
	}
	return per
}

// sinkPerConn returns how many messages each connection carried, largest
// first, as the sink received them.
func sinkPerConn(msgs []sink.Message) []int {
	by := map[int]int{}
	for _, m := range msgs {
		by[m.ConnID]++
	}
	per := slices.Collect(maps.Values(by))
	slices.Sort(per)
	slices.Reverse(per)
	return per
}

func matchesAny(s string, res []string) bool {
	for _, re := range res {
		if regexp.MustCompile(re).MatchString(s) {
			return true
		}
	}
	return false
}

func checkScenario(t *testing.T, sc scenario, rs []result) {
	t.Helper()
	for _, r := range rs {
		if r.lost != 0 {
			t.Errorf("%s: %d of %d messages lost", r.variant, r.lost, r.sent)
		}
		if len(r.dups) != 0 {
			t.Errorf("%s: duplicated messages: %v", r.variant, r.dups)
		}
		for _, p := range r.problems {
			t.Errorf("%s: unexpected log line: %s", r.variant, p)
		}
		if sc.minReuse && r.counts.Messages <= r.counts.Sessions {
			t.Errorf("%s: no connection reuse: %d messages over %d sessions", r.variant, r.counts.Messages, r.counts.Sessions)
		}
		if r.stats.Lines == 0 {
			t.Errorf("%s: no statistics lines from the cache daemon", r.variant)
		}
		if r.lost == 0 && len(r.dups) == 0 && !slices.Equal(r.perConn, r.perConnLog) {
			t.Errorf("%s: messages per connection: sink %v, client's conn_use %v", r.variant, r.perConn, r.perConnLog)
		}
		if sc.reuseLimit > 0 && len(r.perConn) > 0 && r.perConn[0] > sc.reuseLimit+1 {
			t.Errorf("%s: a connection carried %d messages, reused beyond the limit %d", r.variant, r.perConn[0], sc.reuseLimit)
		}
	}
	if len(rs) == 2 {
		real, gos := rs[0], rs[1]
		if sc.qmgrDriven {
			gm := gos.stats.DestMiss + gos.stats.EndpMiss
			rm := real.stats.DestMiss + real.stats.EndpMiss
			// A miss comes after each time the queue manager turned
			// caching on; how often it does is its timing's doing.
			if gm > rm+2 {
				t.Errorf("lookup misses: goscache %d > scache %d", gm, rm)
			}
			if gos.stats.DestHits+gos.stats.EndpHits == 0 && real.stats.DestHits+real.stats.EndpHits > 0 {
				t.Errorf("goscache had no lookup hits (scache %d)", real.stats.DestHits+real.stats.EndpHits)
			}
			return
		}
		if sc.reuseLimit > 0 && !slices.Equal(real.perConn, gos.perConn) {
			t.Errorf("messages per connection with reuse limit %d: goscache %v, scache %v", sc.reuseLimit, gos.perConn, real.perConn)
		}
		if sc.sinkTimed {
			// One at most: a close that races the liveness check.
			if d := gos.deadHandouts(); d > 1 {
				t.Errorf("goscache handed out %d connections the sink had closed (scache %d)", d, real.deadHandouts())
			}
		}
		if gos.counts.Sessions > real.counts.Sessions+sc.slack {
			t.Errorf("messages per SMTP session: goscache %.2f (%d sessions) < scache %.2f (%d sessions)",
				gos.perSession(), gos.counts.Sessions, real.perSession(), real.counts.Sessions)
		}
	}
}

// histogram writes messages per connection (largest first) as
// "2x3 1x2": two connections with 3 messages, one with 2.
func histogram(per []int) string {
	var parts []string
	for i := 0; i < len(per); {
		j := i
		for j < len(per) && per[j] == per[i] {
			j++
		}
		parts = append(parts, fmt.Sprintf("%dx%d", j-i, per[i]))
		i = j
	}
	return strings.Join(parts, " ")
}

var tableMu sync.Mutex

func printTable(t *testing.T, results []result, notes []string) {
	tableMu.Lock()
	defer tableMu.Unlock()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tdaemon\tsent\tmsgs\tTCP conns\trefused\tsessions\tTLS\tRSETs\tmsgs/session\tdest hit/miss\taddr hit/miss\tdead\tconns x msgs\tsecs\t")
	for _, r := range results {
		dead := "?" // statistics incomplete
		if d := r.deadHandouts(); d >= 0 {
			dead = strconv.Itoa(d)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%d/%d\t%d/%d\t%s\t%s\t%.1f\t\n",
			r.scenario, r.variant, r.sent, r.counts.Messages, r.counts.Conns, r.counts.Refused, r.counts.Sessions,
			r.counts.TLS, r.counts.Rsets, r.perSession(), r.stats.DestHits, r.stats.DestMiss,
			r.stats.EndpHits, r.stats.EndpMiss, dead, histogram(r.perConn), r.elapsed.Seconds())
	}
	w.Flush()
	for _, n := range notes {
		fmt.Fprintln(&b, n)
	}
	fmt.Fprintf(os.Stdout, "\n== compat: real scache vs goscache (side by side)\n%s\n", b.String())
	if f := os.Getenv("COMPAT_TABLE"); f != "" {
		os.WriteFile(f, []byte(b.String()), 0o644)
	}
}
