//go:build compat

package compattest

import (
	"cmp"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/compat-tests/sink"
)

// soakReport collects a soak run and writes docs/soak.md's report.
type soakReport struct {
	seed                   uint64
	dur                    time.Duration
	rate                   int
	sides                  []*soakSide
	start                  time.Time
	postfix                string
	noPkg, debCur, debNext string
	versions               []string
	events                 []soakEvent
	injectEnd, injectDone  time.Duration
	loadStart, loadEnd     string
	warm, tail             time.Duration
	extended               time.Duration // the run went on this much past SOAK for a whole tail
	results                []soakResult
	failures               []string
	binaries               []soakBinary // goscache's processes and the versions they ran
}

// soakResult is what one side showed.
type soakResult struct {
	side                          string
	injected, uncertain, retries  int
	received, unique, unexpected  int
	unexpectedIDs                 []string
	dups, lost                    []string
	uncertainArrived              int
	delayMax, delayP50, delayP99  time.Duration
	logDelayMax                   float64 // largest delay= of a status=sent line (s)
	counts                        sink.Counts
	stats                         pfx.Stats
	reused                        int
	drain                         time.Duration
	unexplained                   []string
	allowed                       map[int]int // soakAllowed index -> lines
	rssEarly, rssLate             int         // median kB
	fdsEarly, fdsLate             int         // median
	rssPeak, fdsPeak              int
	leak                          []string
	driftNote                     string // why RSS and descriptors were not compared
	slowest                       string // the message with the longest delay not held after a reload
	delayMaxFree                  time.Duration
	held                          int           // messages a new qmgr skipped after a reload ("skipped, still being delivered")
	heldMax                       time.Duration // the longest delay among them
	starts                        int           // cache daemon processes seen (pids)
	statusSent, deferred, bounced int
	skipped                       int      // "skipped, still being delivered" (a new qmgr after a reload)
	dupsStopped                   []string // duplicates whose first copy arrived during postfix stop
}

func (r soakResult) dead() int { return r.stats.DestHits + r.stats.EndpHits - r.reused }

var allowedRE = func() []*regexp.Regexp {
	var res []*regexp.Regexp
	for _, a := range soakAllowed {
		res = append(res, regexp.MustCompile(a.re))
	}
	return res
}()

var logDelayRE = regexp.MustCompile(`, delay=([0-9.]+),`)

// soakDriftMin is the shortest run whose RSS and descriptor drift is judged.
const soakDriftMin = 10 * time.Minute

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// duringStop reports whether t falls within a postfix stop (a second of
// margin either side). postfix stop ends the delivery agents at once: one
// that sent a message's end of DATA but had not read the sink's 250 yet
// leaves the message queued, and it is sent again after the start (the
// window RFC 1047 describes; the cache daemon plays no part in it).
func (rep *soakReport) duringStop(t time.Time) bool {
	for _, e := range rep.events {
		if e.kind != evStopStart {
			continue
		}
		from := rep.start.Add(e.at - time.Second)
		to := rep.start.Add(e.at + e.took + time.Second)
		if !t.Before(from) && !t.After(to) {
			return true
		}
	}
	return false
}

func (rep *soakReport) fired(kind string) bool {
	if kind == "tls-reuse" || kind == "machine" {
		return true
	}
	return slices.ContainsFunc(rep.events, func(e soakEvent) bool { return e.kind == kind })
}

// finish computes every side's result and fails t on what must not happen
// with goscache (Postfix's scache is reported, not judged).
func (rep *soakReport) finish(t *testing.T) {
	for _, s := range rep.sides {
		r := soakResult{side: s.name, allowed: map[int]int{}, drain: s.drained}
		s.mu.Lock()
		r.injected, r.uncertain, r.retries = len(s.injected), len(s.uncertain), s.retries
		got := map[string]int{}
		first := map[string]time.Time{}
		rcpt := map[string]string{}
		for _, m := range s.sink.Messages() {
			id := strings.Trim(m.MessageID, "<>")
			got[id]++
			if _, ok := first[id]; !ok {
				first[id] = m.At
				rcpt[id] = m.Addr + " " + strings.Join(m.To, ",")
			}
		}
		r.received, r.unique = len(s.sink.Messages()), len(got)
		lines, err := s.inst.LogSince(0)
		if err != nil {
			t.Error(err)
		}
		held := soakHeld(lines)
		var delays []time.Duration
		for id, at := range s.injected {
			n := got[id]
			switch {
			case n == 0:
				r.lost = append(r.lost, id)
			case n > 1 && rep.duringStop(first[id]):
				r.dupsStopped = append(r.dupsStopped, fmt.Sprintf("%s x%d", id, n))
			case n > 1:
				r.dups = append(r.dups, fmt.Sprintf("%s x%d", id, n))
			}
			if n > 0 {
				d := first[id].Sub(at)
				delays = append(delays, d)
				if held[id] {
					// qmgr held it a minute after a reload.
					r.heldMax = max(r.heldMax, d)
					r.held++
				} else if d > r.delayMaxFree {
					r.delayMaxFree = d
					r.slowest = fmt.Sprintf("%s (%s, injected at %v)", id, rcpt[id], at.Sub(rep.start).Round(time.Millisecond))
				}
			}
		}
		for id := range s.uncertain {
			switch got[id] {
			case 0:
			case 1:
				r.uncertainArrived++
			default:
				r.dups = append(r.dups, fmt.Sprintf("%s x%d", id, got[id]))
			}
		}
		for id := range got {
			if _, ok := s.injected[id]; !ok && !s.uncertain[id] {
				r.unexpected++
				if len(r.unexpectedIDs) < 10 {
					r.unexpectedIDs = append(r.unexpectedIDs, fmt.Sprintf("%q(x%d, at %v, %s)", id, got[id], first[id].Sub(rep.start).Round(time.Millisecond), rcpt[id]))
				}
			}
		}
		samples := slices.Clone(s.samples)
		s.mu.Unlock()
		slices.Sort(r.lost)
		slices.Sort(r.dups)
		slices.Sort(delays)
		if len(delays) > 0 {
			r.delayMax = delays[len(delays)-1]
			r.delayP50 = delays[len(delays)/2]
			r.delayP99 = delays[len(delays)*99/100]
		}
		r.counts = s.sink.Total()

		// goscache in scache's place logs as postfix/scache.
		r.stats = pfx.ParseStats(lines, "scache")
		r.reused = countReused(lines)
		pids := map[int]bool{}
		for _, l := range lines {
			if l.Program == "scache" {
				pids[l.Pid] = true
			}
			if strings.Contains(l.Text, "skipped, still being delivered") {
				r.skipped++
			}
			if l.Program == "smtp" || l.Program == "lmtp" {
				switch {
				case strings.Contains(l.Text, "status=sent"):
					r.statusSent++
					if m := logDelayRE.FindStringSubmatch(l.Text); m != nil {
						d, _ := strconv.ParseFloat(m[1], 64)
						r.logDelayMax = max(r.logDelayMax, d)
					}
				case strings.Contains(l.Text, "status=deferred"):
					r.deferred++
				case strings.Contains(l.Text, "status=bounced"):
					r.bounced++
				}
			}
			if !isProblem(l.Text) {
				continue
			}
			explained := false
			for i, a := range soakAllowed {
				if rep.fired(a.event) && allowedRE[i].MatchString(l.Raw) {
					r.allowed[i]++
					explained = true
					break
				}
			}
			if !explained {
				r.unexplained = append(r.unexplained, l.Raw)
			}
		}
		r.starts = len(pids)

		// Early: the second half of the warm-up; late: the last half of
		// the tail, before injection ended; in both only the samples of a
		// running daemon in steady traffic (no backlog: at most two
		// seconds' worth of mail queued). RSS: the medians; descriptors:
		// the minimums, the floor under the cached connections, which
		// come and go with the traffic.
		var rssE, rssL, fdE, fdL []int
		for _, smp := range samples {
			r.rssPeak = max(r.rssPeak, smp.rssKB)
			r.fdsPeak = max(r.fdsPeak, smp.fds)
			if smp.rssKB == 0 || smp.fds < 0 || smp.queue > 2*rep.rate {
				continue
			}
			switch {
			case smp.at >= rep.warm/2 && smp.at <= rep.warm:
				rssE, fdE = append(rssE, smp.rssKB), append(fdE, smp.fds)
			case smp.at >= rep.injectEnd-rep.tail/2 && smp.at <= rep.injectEnd:
				rssL, fdL = append(rssL, smp.rssKB), append(fdL, smp.fds)
			}
		}
		r.rssEarly, r.rssLate = median(rssE), median(rssL)
		if len(fdE) > 0 && len(fdL) > 0 {
			r.fdsEarly, r.fdsLate = slices.Min(fdE), slices.Min(fdL)
		}
		switch {
		case len(rssE) == 0 || len(rssL) == 0:
			r.driftNote = fmt.Sprintf("not measured: no steady samples of a running %s (%d early, %d late)", s.prog, len(rssE), len(rssL))
		case rep.dur < soakDriftMin:
			// Windows of a few seconds on a shared machine: the
			// cached connections follow the load, not a leak.
			r.driftNote = fmt.Sprintf("figures only: not judged in a run shorter than %v", soakDriftMin)
		default:
			if lim := r.rssEarly*13/10 + 4096; r.rssLate > lim {
				r.leak = append(r.leak, fmt.Sprintf("RSS %d kB late > %d kB (early %d kB x1.3 + 4 MiB)", r.rssLate, lim, r.rssEarly))
			}
			if lim := r.fdsEarly + max(8, r.fdsEarly/4); r.fdsLate > lim {
				r.leak = append(r.leak, fmt.Sprintf("%d descriptors late > %d (early %d + max(8, a quarter))", r.fdsLate, lim, r.fdsEarly))
			}
		}
		rep.results = append(rep.results, r)

		judge := func(format string, a ...any) {
			msg := s.name + ": " + fmt.Sprintf(format, a...)
			if s.name == "goscache" {
				t.Error(msg)
				rep.failures = append(rep.failures, msg)
			} else {
				t.Log("(not judged) " + msg)
			}
		}
		if len(r.lost) > 0 {
			judge("%d of %d messages lost: %q", len(r.lost), r.injected, r.lost[:min(10, len(r.lost))])
		}
		if len(r.dups) > 0 {
			judge("%d messages delivered more than once: %q", len(r.dups), r.dups[:min(10, len(r.dups))])
		}
		if r.unexpected > 0 {
			judge("%d messages at the sinks that were never injected: %s", r.unexpected, strings.Join(r.unexpectedIDs, " "))
		}
		if r.drain < 0 || r.drain > soakDrainBound {
			judge("queue not empty within %v after injection stopped (%v)%s", soakDrainBound, r.drain, stuckReport(s.inst))
		}
		if r.delayMaxFree > soakDrainBound {
			judge("a message took %v from injection to the sink (bound %v): %s", r.delayMaxFree.Round(time.Millisecond), soakDrainBound, r.slowest)
		}
		for i, p := range r.unexplained {
			if i == 10 {
				judge("... and %d more lines no event explains", len(r.unexplained)-i)
				break
			}
			judge("log line no event explains: %s", p)
		}
		for _, l := range r.leak {
			judge("%s", l)
		}
		if s.idleStay > 0 {
			judge("%s outlived %d quiet spells (max_idle %ds)", s.prog, s.idleStay, soakMaxIdle)
		}
		if r.stats.Lines == 0 {
			judge("no statistics lines from %s", s.prog)
		}
		if s.prog == "goscache" && rep.noPkg == "" {
			var wrong []string
			rep.binaries, wrong = rep.whichBinaries(s)
			for _, w := range wrong {
				judge("%s", w)
			}
		}
	}
}

// soakBinary is one goscache process and the package version it should
// have run: the one installed when it started.
type soakBinary struct {
	proc      soakProc
	want      string // "" when it started while dpkg -i ran (either is right)
	installed string // the event that installed want ("" for the first install)
}

// whichBinaries pairs every goscache process the sampler saw with the
// package version installed when it started, and returns the mismatches:
// a process started after an upgrade (dpkg -i, then postfix reload) must
// run the new binary, and one started after the downgrade the old one.
func (rep *soakReport) whichBinaries(s *soakSide) ([]soakBinary, []string) {
	s.mu.Lock()
	var procs []soakProc
	for _, p := range s.procs {
		procs = append(procs, *p)
	}
	s.mu.Unlock()
	slices.SortFunc(procs, func(a, b soakProc) int { return a.start.Compare(b.start) })
	var out []soakBinary
	var wrong []string
	for _, p := range procs {
		b := soakBinary{proc: p, want: rep.versions[0]}
		for _, e := range rep.events {
			if e.installed == "" {
				continue
			}
			// /proc's start times are in 10 ms ticks: 100 ms of slack.
			const slack = 100 * time.Millisecond
			from, to := rep.start.Add(e.at-slack), rep.start.Add(e.dpkgDone+slack)
			switch {
			case p.start.After(to):
				b.want, b.installed = e.installed, fmt.Sprintf("%s at %.0f s", e.kind, e.at.Seconds())
			case p.start.After(from):
				b.want, b.installed = "", fmt.Sprintf("during the %s at %.0f s", e.kind, e.at.Seconds())
			}
		}
		if b.want != "" && p.version != b.want {
			wrong = append(wrong, fmt.Sprintf("goscache pid %d, started at %.1f s, ran version %q; %s was installed then (%s)",
				p.pid, p.start.Sub(rep.start).Seconds(), p.version, b.want, cmp.Or(b.installed, "at the start")))
		}
		out = append(out, b)
	}
	return out, wrong
}

// soakHeld returns the Message-IDs of the messages that a queue
// manager started by postfix reload skipped because an smtp(8) of the old
// one still held their queue file: qmgr puts such a file back with a time
// stamp a minute ahead, so a delivery of it that failed then waits that
// minute (docs/compat.md, "A message held 60 seconds after postfix reload").
func soakHeld(lines []pfx.LogLine) map[string]bool {
	ids := map[string]string{} // queue ID -> Message-ID
	var skipped []string
	for _, l := range lines {
		qid, rest, ok := strings.Cut(l.Text, ": ")
		if !ok {
			continue
		}
		switch {
		case l.Program == "cleanup" && strings.HasPrefix(rest, "message-id=<"):
			ids[qid] = strings.TrimSuffix(strings.TrimPrefix(rest, "message-id=<"), ">")
		case strings.HasPrefix(rest, "skipped, still being delivered"):
			skipped = append(skipped, qid)
		}
	}
	held := map[string]bool{}
	for _, q := range skipped {
		if id, ok := ids[q]; ok {
			held[id] = true
		}
	}
	return held
}

func isProblem(text string) bool {
	for _, pre := range []string{"warning: ", "fatal: ", "panic: ", "error: "} {
		if strings.HasPrefix(text, pre) {
			return true
		}
	}
	return false
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func (rep *soakReport) drainStr(r soakResult) string {
	if r.drain < 0 {
		return "NOT EMPTY"
	}
	return ms(r.drain)
}

// summary is the side-by-side table printed at the end of the run.
func (rep *soakReport) summary() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "daemon\tinjected\tuncertain\tlost\tdup\tsessions\tmsgs/session\thits\tmiss\tdead\tdelay p50\tp99\tmax\tdrain\tRSS early/late kB\tfds early/late\tunexplained\t")
	for _, r := range rep.results {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d/%d\t%d/%d\t%d\t\n",
			r.side, r.injected, r.uncertain, len(r.lost), len(r.dups), r.counts.Sessions, perSession(r),
			r.stats.DestHits+r.stats.EndpHits, r.stats.DestMiss+r.stats.EndpMiss, r.dead(),
			ms(r.delayP50), ms(r.delayP99), ms(r.delayMax), rep.drainStr(r),
			r.rssEarly, r.rssLate, r.fdsEarly, r.fdsLate, len(r.unexplained))
	}
	w.Flush()
	fmt.Fprintf(&b, "events: %d; %s\n", len(rep.events), rep.eventCounts())
	if len(rep.failures) == 0 {
		b.WriteString("verdict: pass\n")
	} else {
		fmt.Fprintf(&b, "verdict: FAIL (%d)\n", len(rep.failures))
	}
	return b.String()
}

func perSession(r soakResult) float64 {
	if r.counts.Sessions == 0 {
		return 0
	}
	return float64(r.counts.Messages) / float64(r.counts.Sessions)
}

func (rep *soakReport) eventCounts() string {
	n := map[string]int{}
	var kinds []string
	for _, e := range rep.events {
		if n[e.kind] == 0 {
			kinds = append(kinds, e.kind)
		}
		n[e.kind]++
	}
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s x%d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}

// write puts the report into dir: soak.md, and under soak/ the samples,
// the events and the plots.
func (rep *soakReport) write(dir string) error {
	data := filepath.Join(dir, "soak")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	var csv strings.Builder
	csv.WriteString("seconds,daemon,pids,rss_kb,fds,queue,delivered,loadavg\n")
	for _, s := range rep.sides {
		for _, smp := range s.samples {
			fmt.Fprintf(&csv, "%.1f,%s,%s,%d,%d,%d,%d,%s\n", smp.at.Seconds(), s.name,
				strings.Trim(strings.ReplaceAll(fmt.Sprint(smp.pids), " ", ";"), "[]"), smp.rssKB, smp.fds, smp.queue, smp.delivered, smp.load)
		}
	}
	var evs strings.Builder
	evs.WriteString("seconds,took,event,side,detail\n")
	for _, e := range rep.events {
		fmt.Fprintf(&evs, "%.1f,%.1f,%s,%s,%q\n", e.at.Seconds(), e.took.Seconds(), e.kind, e.side, e.detail)
	}
	files := map[string]string{
		"samples.csv": csv.String(),
		"events.csv":  evs.String(),
		"rss.svg": rep.plot("Cache daemon RSS (MiB)", func(s soakSample) float64 {
			return float64(s.rssKB) / 1024
		}),
		"fds.svg": rep.plot("Cache daemon open descriptors", func(s soakSample) float64 { return float64(s.fds) }),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(data, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "soak.md"), []byte(rep.markdown()), 0o644)
}

func (rep *soakReport) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Soak: a server's life, compressed\n\n")
	p("Generated by `make soak` (compat-tests/soak_test.go, TestSoak); do not edit by hand.\n")
	p("Real Postfix master(8), two private instances at once: one with Postfix's scache(8), one with goscache\n")
	p("as its scache service, the same mail into both, while the events of a server's life fire at seeded\n")
	p("random times. How it works and what it checks: docs/compat.md (§ Soak).\n\n")
	p("- Run: %s UTC, SOAK=%v, SOAK_SEED=%d, SOAK_RATE=%d (repeat: `make soak SOAK=%v SOAK_SEED=%d`)\n",
		rep.start.UTC().Format("2006-01-02 15:04"), rep.dur, rep.seed, rep.rate, rep.dur, rep.seed)
	p("- Postfix %s; goscache package versions over the run: %s\n", rep.postfix, strings.Join(slices.Compact(slices.Clone(rep.versions)), " → "))
	p("- Machine load average (1, 5, 15 min) at the start: %s; at the end: %s (a shared 2-core machine; other work ran beside the soak)\n", rep.loadStart, rep.loadEnd)
	if rep.noPkg != "" {
		p("- Package events not run: %s\n", rep.noPkg)
	}
	p("- Injection stopped at %.0f s (%.0f s past SOAK so that a whole tail of steady traffic followed the last event); the last message was handed over at %.0f s\n",
		rep.injectEnd.Seconds(), rep.extended.Seconds(), rep.injectDone.Seconds())
	p("- Traffic: %d msg/s steady into each instance over SMTP, %d destinations (4 plain, one closing idle connections after 1 s, one refusing every 3rd connection with 421 before a second next hop, one answering every command 50 ms late, 2 with STARTTLS required and smtp_tls_connection_reuse = yes, LMTP over a UNIX-domain socket), bursts of %d messages\n\n",
		rep.rate, len(soakDomains), soakBurst)
	if len(rep.failures) == 0 {
		p("**Verdict: pass** — goscache: nothing lost, duplicated or stuck, no unexplained warning, no RSS or descriptor growth.\n\n")
	} else {
		p("**Verdict: FAIL**\n\n")
		for _, f := range rep.failures {
			p("- %s\n", strings.SplitN(f, "\n", 2)[0])
		}
		p("\n")
	}
	p("## Side by side\n\n")
	p("| | %s |\n|---|%s\n", strings.Join(names(rep.results), " | "), strings.Repeat("---|", len(rep.results)))
	row := func(label string, f func(r soakResult) string) {
		var cells []string
		for _, r := range rep.results {
			cells = append(cells, f(r))
		}
		p("| %s | %s |\n", label, strings.Join(cells, " | "))
	}
	row("messages injected (250 after DATA)", func(r soakResult) string { return strconv.Itoa(r.injected) })
	row("uncertain injections (reply lost; arrived)", func(r soakResult) string {
		return fmt.Sprintf("%d (%d)", r.uncertain, r.uncertainArrived)
	})
	row("delivered (distinct Message-IDs at the sinks)", func(r soakResult) string { return strconv.Itoa(r.unique) })
	row("**lost**", func(r soakResult) string { return strconv.Itoa(len(r.lost)) })
	row("**duplicated**", func(r soakResult) string { return strconv.Itoa(len(r.dups)) })
	row("duplicated within a postfix stop²", func(r soakResult) string { return strconv.Itoa(len(r.dupsStopped)) })
	row("**stuck** (queue not empty 30 s after injection)", func(r soakResult) string {
		if r.drain < 0 || r.drain > soakDrainBound {
			return "yes"
		}
		return "0"
	})
	row("queue empty after injection stopped", func(r soakResult) string { return rep.drainStr(r) })
	row("queue delay p50 / p99 / **max** (injection → sink)", func(r soakResult) string {
		return fmt.Sprintf("%s / %s / **%s**", ms(r.delayP50), ms(r.delayP99), ms(r.delayMax))
	})
	row("the slowest message (not held after a reload)", func(r soakResult) string {
		return fmt.Sprintf("%s: %s", ms(r.delayMaxFree), r.slowest)
	})
	row("messages qmgr held after a reload³ (their longest delay)", func(r soakResult) string {
		return fmt.Sprintf("%d (%s)", r.held, ms(r.heldMax))
	})
	row("largest delay= in the log", func(r soakResult) string { return fmt.Sprintf("%.2f s", r.logDelayMax) })
	row("deliveries deferred (sink 421s, kills)", func(r soakResult) string { return strconv.Itoa(r.deferred) })
	row("TCP connections / 421-refused / SMTP sessions", func(r soakResult) string {
		return fmt.Sprintf("%d / %d / %d", r.counts.Conns, r.counts.Refused, r.counts.Sessions)
	})
	row("messages per session", func(r soakResult) string { return fmt.Sprintf("%.2f", perSession(r)) })
	row("deliveries over a cached connection", func(r soakResult) string { return strconv.Itoa(r.reused) })
	row("lookups: domain hit/miss, address hit/miss", func(r soakResult) string {
		return fmt.Sprintf("%d/%d, %d/%d", r.stats.DestHits, r.stats.DestMiss, r.stats.EndpHits, r.stats.EndpMiss)
	})
	row("dead hand-outs (hits − reused deliveries)¹", func(r soakResult) string { return strconv.Itoa(r.dead()) })
	row("cache daemon processes over the run", func(r soakResult) string { return strconv.Itoa(r.starts) })
	row("RSS and descriptors compared", func(r soakResult) string {
		if r.driftNote != "" {
			return r.driftNote
		}
		return "yes"
	})
	row("RSS early → late (median, kB); peak", func(r soakResult) string {
		return fmt.Sprintf("%d → %d; %d", r.rssEarly, r.rssLate, r.rssPeak)
	})
	row("descriptors early → late (minimum); peak", func(r soakResult) string {
		return fmt.Sprintf("%d → %d; %d", r.fdsEarly, r.fdsLate, r.fdsPeak)
	})
	row("warning lines explained by an event", func(r soakResult) string {
		n := 0
		for _, c := range r.allowed {
			n += c
		}
		return strconv.Itoa(n)
	})
	row("**unexplained** warning/fatal/panic lines", func(r soakResult) string { return strconv.Itoa(len(r.unexplained)) })
	p("\n¹ A statistics interval cut short by a SIGKILL or a squeeze is never logged, so after such events\n")
	p("the hits undercount and this figure can be negative; it is exact only over intervals that were logged.\n")
	p("² postfix stop ends the delivery agents at once; one that had sent the end of DATA but not read the 250 leaves the\n")
	p("message queued, and it goes again after the start (RFC 1047's window; the cache plays no part in the SMTP dialogue).\n")
	p("Only a duplicate whose first copy arrived within a second of a stop counts here; any other fails the run.\n")
	p("³ \"skipped, still being delivered\": after postfix reload the new qmgr finds a file that an smtp(8) of the old one\n")
	p("still delivers; it puts the file back with a time stamp a minute ahead (docs/compat.md, \"A message held 60 seconds\n")
	p("after postfix reload\"). If that delivery failed (a deferral), the message waits the minute: Postfix's doing, with\n")
	p("either daemon, so these messages are not held to the 30 s bound; every other one is. Once injection stops the soak\n")
	p("flushes (postqueue -f), as further mail would.\n\n")
	p("Early is the second half of the %.0f s warm-up, late the last %.0f s before injection stopped; both without events, and only samples with at most two seconds' worth of mail queued.\n\n", rep.warm.Seconds(), (rep.tail / 2).Seconds())
	p("![RSS over time](soak/rss.svg)\n\n![descriptors over time](soak/fds.svg)\n\n")
	p("## Events (%s)\n\n", rep.eventCounts())
	p("| at | took | event | side | what happened |\n|---|---|---|---|---|\n")
	for _, e := range rep.events {
		p("| %.0f s | %.1f s | %s | %s | %s |\n", e.at.Seconds(), e.took.Seconds(), e.kind, e.side, strings.ReplaceAll(e.detail, "|", "\\|"))
	}
	if len(rep.binaries) > 0 {
		p("\n## Which goscache binary ran\n\n")
		p("Every goscache process the sampler saw, with what its own executable says (`/proc/PID/exe -version`:\n")
		p("the binary the process runs, even after dpkg has replaced the file) and the package version installed when\n")
		p("it started. After each upgrade or downgrade the soak runs `postfix reload` on goscache's instance, as the\n")
		p("package's postinst does for the system's; a process that started later and ran another version fails the run.\n\n")
		for _, e := range rep.events {
			if e.installed == "" {
				continue
			}
			ran := "no goscache process started before the next package event or the end"
			for _, b := range rep.binaries {
				if b.proc.version == e.installed && b.proc.start.After(rep.start.Add(e.at)) {
					ran = fmt.Sprintf("pid %d, started %.1f s after dpkg -i returned", b.proc.pid, b.proc.start.Sub(rep.start.Add(e.dpkgDone)).Seconds())
					break
				}
			}
			p("- %s at %.0f s to %s: the first process of the version installed: %s\n", e.kind, e.at.Seconds(), e.installed, ran)
		}
		p("\n")
		p("| pid | started at | ran | installed then |\n|---|---|---|---|\n")
		for _, b := range rep.binaries {
			want := b.want
			if want == "" {
				want = "either (" + b.installed + ")"
			} else if b.installed != "" {
				want += " (" + b.installed + ")"
			}
			p("| %d | %.1f s | %s | %s |\n", b.proc.pid, b.proc.start.Sub(rep.start).Seconds(), cmp.Or(b.proc.version, "?"), want)
		}
	}
	p("\n## Warnings and the events that explain them\n\n")
	p("| event | log line (regexp) | %s |\n|---|---|%s\n", strings.Join(names(rep.results), " | "), strings.Repeat("---|", len(rep.results)))
	for i, a := range soakAllowed {
		var cells []string
		for _, r := range rep.results {
			cells = append(cells, strconv.Itoa(r.allowed[i]))
		}
		p("| %s | `%s` | %s |\n", a.event, strings.ReplaceAll(a.re, "|", "\\|"), strings.Join(cells, " | "))
	}
	for _, r := range rep.results {
		if len(r.unexplained) == 0 {
			continue
		}
		p("\nUnexplained on the %s side (first 20):\n\n```\n", r.side)
		for _, l := range r.unexplained[:min(20, len(r.unexplained))] {
			p("%s\n", l)
		}
		p("```\n")
	}
	p("\nData: soak/samples.csv (every %s sample), soak/events.csv.\n", "daemon")
	return b.String()
}

func names(rs []soakResult) []string {
	var n []string
	for _, r := range rs {
		n = append(n, r.side)
	}
	return n
}

// plot draws value(sample) over time for both daemons, with the events as
// vertical lines. Written by hand, as cmd/benchplot's plots.
func (rep *soakReport) plot(title string, value func(soakSample) float64) string {
	const W, H, L, R, T, B = 720, 300, 60, 110, 34, 40
	iw, ih := float64(W-L-R), float64(H-T-B)
	xmax := max(rep.injectDone.Seconds(), 1)
	for _, s := range rep.sides {
		for _, smp := range s.samples {
			xmax = max(xmax, smp.at.Seconds())
		}
	}
	ymax := 1.0
	for _, s := range rep.sides {
		for _, smp := range s.samples {
			ymax = max(ymax, value(smp))
		}
	}
	step := niceStepSoak(ymax / 4)
	ytop := math.Ceil(ymax/step) * step
	x := func(v float64) float64 { return float64(L) + v/xmax*iw }
	y := func(v float64) float64 { return float64(T) + ih - v/ytop*ih }
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", W, H, W, H)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	w(`<text x="%d" y="20" font-size="14" text-anchor="middle">%s</text>`+"\n", W/2, html.EscapeString(title))
	for v := 0.0; v <= ytop+step/2; v += step {
		w(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", L, W-R, y(v), y(v), L-6, y(v)+4, v)
	}
	xstep := niceStepSoak(xmax / 6)
	for v := 0.0; v <= xmax; v += xstep {
		w(`<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", x(v), H-B+16, v)
	}
	w(`<text x="%d" y="%d" text-anchor="middle">seconds</text>`+"\n", L+int(iw/2), H-6)
	for _, e := range rep.events {
		w(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999" stroke-dasharray="3,3"><title>%s</title></line>`+"\n",
			x(e.at.Seconds()), x(e.at.Seconds()), T, H-B, html.EscapeString(e.kind))
		w(`<text x="%.1f" y="%d" font-size="8" transform="rotate(-90 %.1f %d)" fill="#666">%s</text>`+"\n",
			x(e.at.Seconds())-2, T+4, x(e.at.Seconds())-2, T+4, html.EscapeString(e.kind))
	}
	colors := map[string]string{"scache": "#d62728", "goscache": "#1f77b4"}
	for i, s := range rep.sides {
		var pts []string
		for _, smp := range s.samples {
			if smp.fds < 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(smp.at.Seconds()), y(value(smp))))
		}
		w(`<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", colors[s.name], strings.Join(pts, " "))
		w(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`+"\n",
			W-R+10, W-R+30, T+10+18*i, T+10+18*i, colors[s.name], W-R+34, T+14+18*i, s.name)
	}
	w(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", L, T, iw, ih)
	w("</svg>\n")
	return b.String()
}

// niceStepSoak rounds a raw axis step up to 1, 2 or 5 times a power of ten.
func niceStepSoak(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
