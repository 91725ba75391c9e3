// Package e2ebench holds the figures of "make bench-e2e" (issue 18 §4): mail
// delivered through real Postfix three ways (no connection cache, Postfix's
// scache, goscache) to sinks that emulate a WAN round trip. It parses what
// the harness measures (maillog delay= and conn_use= fields, /proc/PID/stat
// CPU times), keeps the results file's format (docs/bench/e2e.json) and
// reduces the rounds to medians and within-round ratios for cmd/benchplot.
//
// The harness itself is compat-tests/bench_e2e_test.go (build tag compat);
// this package has no build tag, so its parsing is tested by the normal
// unit tests.
package e2ebench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The ways Postfix is run, in the order the report shows them.
const (
	WayNone     = "none"     // no connection cache: every delivery opens a session
	WayScache   = "scache"   // Postfix's scache(8)
	WayGoscache = "goscache" // goscache in scache's place
)

// Ways lists the three ways.
var Ways = []string{WayNone, WayScache, WayGoscache}

// Report is the results file, docs/bench/e2e.json.
type Report struct {
	// Command is the command line that produced the file.
	Command string `json:"command"`
	// Machine describes the host and how busy it was.
	Machine Machine `json:"machine"`
	// Config is the workload.
	Config Config `json:"config"`
	// Runs are the measurements, one per way per round.
	Runs []Run `json:"runs"`
}

// Machine describes where the run happened.
type Machine struct {
	Date      string `json:"date"`
	Kernel    string `json:"kernel"`
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryMB  int    `json:"memory_mb"`
	Postfix   string `json:"postfix"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	// LoadBefore and LoadAfter are /proc/loadavg's three figures at the
	// start and the end of the whole run; each Run has its own too.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

// Config is the workload of every run.
type Config struct {
	Messages        int    `json:"messages"`         // messages injected per run
	Destinations    int    `json:"destinations"`     // next hops (one sink address each)
	TLSDestinations int    `json:"tls_destinations"` // of which smtp(8) must use STARTTLS
	IdleCloseDests  int    `json:"idle_close_destinations"`
	IdleCloseMs     int    `json:"idle_close_ms"`    // the idle-closing sink's timeout
	RTTMs           int    `json:"rtt_ms"`           // the sink's delay before every reply, greeting included
	ProcessLimit    int    `json:"process_limit"`    // smtp(8) processes at most (default_process_limit)
	DestConcurrency int    `json:"dest_concurrency"` // default_destination_concurrency_limit
	CacheTimeLimit  string `json:"cache_time_limit"` // smtp_connection_cache_time_limit
	Injectors       int    `json:"injectors"`        // concurrent SMTP clients injecting into smtpd
	Rounds          int    `json:"rounds"`
	TLSReuse        bool   `json:"tls_connection_reuse"` // smtp_tls_connection_reuse
	MessageBytes    int    `json:"message_bytes"`
}

// Run is one way's delivery of the whole workload in one round.
type Run struct {
	Round int    `json:"round"`
	Way   string `json:"way"`
	Order int    `json:"order"` // position within the round (the ways are interleaved)
	// Injected and Delivered count messages (Delivered at the sinks).
	Injected  int `json:"injected"`
	Delivered int `json:"delivered"`
	// Seconds is from the release of the run's mail (injected on hold
	// first) to an empty queue with every message at the sinks;
	// InjectSeconds is how long the injection took before that.
	Seconds       float64 `json:"seconds"`
	InjectSeconds float64 `json:"inject_seconds"`
	// Sessions and TLS are counted at the sinks: SMTP sessions opened
	// (EHLO/HELO seen) and STARTTLS handshakes completed. Conns is TCP
	// connections accepted; IdleClosed estimates nothing (see DeadHandouts).
	Sessions int `json:"sessions"`
	TLS      int `json:"tls_handshakes"`
	Conns    int `json:"conns"`
	// Reused counts deliveries over a cached connection (conn_use >= 2),
	// Hits the cache daemon's lookup hits (its statistics lines), and
	// DeadHandouts = Hits - Reused: connections the cache handed out that
	// smtp(8) could not use.
	Reused       int `json:"reused"`
	Hits         int `json:"hits"`
	DeadHandouts int `json:"dead_handouts"`
	// DelayP50 and DelayP99 are the queue delays (seconds) of the
	// delivered messages after their release: b+c+d of the delays=
	// fields (AfterQueueDelays). TotalDelayP50 and TotalDelayP99 are the
	// delay= fields, which include the time on hold while the run's mail
	// was injected.
	DelayP50      float64 `json:"delay_p50"`
	DelayP99      float64 `json:"delay_p99"`
	TotalDelayP50 float64 `json:"total_delay_p50"`
	TotalDelayP99 float64 `json:"total_delay_p99"`
	// CacheCPU is the CPU seconds (user+system) the cache daemon's
	// processes used during the run, and CachePids how many there were
	// (master restarts the daemon).
	CacheCPU  float64 `json:"cache_cpu_seconds"`
	CachePids int     `json:"cache_pids"`
	// Load is /proc/loadavg's three figures at the end of the run.
	Load string `json:"load"`
}

// MsgsPerSec is the run's throughput.
func (r Run) MsgsPerSec() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Delivered) / r.Seconds
}

// Read loads a results file.
func Read(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

// Write saves rep to path, indented.
func Write(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

var (
	sentRE    = regexp.MustCompile(`\bdelay=([0-9.]+), .*\bstatus=sent\b`)
	delaysRE  = regexp.MustCompile(`\bdelays=([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+), .*\bstatus=sent\b`)
	connUseRE = regexp.MustCompile(`\bconn_use=([0-9]+),.*\bstatus=sent\b`)
)

// Delays returns the delay= field, in seconds, of every status=sent line
// among lines (maillog text).
func Delays(lines []string) []float64 {
	var d []float64
	for _, l := range lines {
		if m := sentRE.FindStringSubmatch(l); m != nil {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil {
				d = append(d, v)
			}
		}
	}
	return d
}

// AfterQueueDelays returns, for every status=sent line among lines, the
// part of its delays=a/b/c/d breakdown after the queue manager took the
// message: b+c+d (waiting for a delivery agent, connection setup,
// transmission), in seconds. a, the time before the queue manager, holds
// the time the message spent on hold.
func AfterQueueDelays(lines []string) []float64 {
	var d []float64
	for _, l := range lines {
		m := delaysRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		sum := 0.0
		ok := true
		for _, f := range m[2:5] {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				ok = false
				break
			}
			sum += v
		}
		if ok {
			d = append(d, math.Round(sum*100)/100)
		}
	}
	return d
}

// Reused counts the status=sent lines whose conn_use= is 2 or more: the
// deliveries over a connection that came out of the cache.
func Reused(lines []string) int {
	n := 0
	for _, l := range lines {
		if m := connUseRE.FindStringSubmatch(l); m != nil {
			if v, _ := strconv.Atoi(m[1]); v >= 2 {
				n++
			}
		}
	}
	return n
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of v,
// or 0 for no values.
func Percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	k := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(k, 1), len(s))-1]
}

// Median returns the median of v, or 0 for no values.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ClockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux architecture Debian ships).
const ClockTicks = 100

// StatTicks returns utime+stime (clock ticks) from the text of
// /proc/PID/stat. The command name may hold spaces and parentheses, so the
// fields are counted after its last ')'.
func StatTicks(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("e2ebench: no command name in %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("e2ebench: short stat %q", stat)
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("e2ebench: utime: %w", err)
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("e2ebench: stime: %w", err)
	}
	return u + s, nil
}

// CPUTracker adds up the CPU time of a set of processes that come and go
// (master(8) restarts the cache daemon): it remembers each pid's ticks at
// its first sample (zero for a pid born after Start) and its last.
type CPUTracker struct {
	first, last map[int]int64
	started     bool
}

// Start records the processes running now as the baseline.
func (c *CPUTracker) Start(ticks map[int]int64) {
	c.first, c.last = map[int]int64{}, map[int]int64{}
	for pid, t := range ticks {
		c.first[pid], c.last[pid] = t, t
	}
	c.started = true
}

// Sample records the current ticks of the processes running now.
func (c *CPUTracker) Sample(ticks map[int]int64) {
	if !c.started {
		c.Start(nil)
	}
	for pid, t := range ticks {
		if _, ok := c.first[pid]; !ok {
			c.first[pid] = 0
		}
		c.last[pid] = max(c.last[pid], t)
	}
}

// Seconds returns the CPU seconds used since Start, and how many
// processes used any.
func (c *CPUTracker) Seconds() (float64, int) {
	var sum int64
	n := 0
	for pid, l := range c.last {
		if d := l - c.first[pid]; d > 0 || c.first[pid] == 0 {
			sum += d
			n++
		}
	}
	return float64(sum) / ClockTicks, n
}

// Row is one way's medians over the rounds.
type Row struct {
	Way          string
	Rounds       int
	MsgsPerSec   float64
	Seconds      float64
	Sessions     float64
	TLS          float64
	DeadHandouts float64
	DelayP50     float64
	DelayP99     float64
	CacheCPU     float64
	// RatioMsgs and RatioSessions are the medians of the within-round
	// ratios to Postfix's scache (0 for scache itself or without scache).
	RatioMsgs, RatioSessions float64
	// MsgsRange is the lowest and highest messages per second.
	MsgsMin, MsgsMax float64
}

// Summarize reduces rep's runs to one Row per way that ran, in Ways order.
func Summarize(rep *Report) []Row {
	byRound := map[int]map[string]Run{}
	for _, r := range rep.Runs {
		if byRound[r.Round] == nil {
			byRound[r.Round] = map[string]Run{}
		}
		byRound[r.Round][r.Way] = r
	}
	var rows []Row
	for _, way := range Ways {
		var msgs, secs, sess, tls, dead, p50, p99, cpu, rm, rs []float64
		for _, rd := range byRound {
			r, ok := rd[way]
			if !ok {
				continue
			}
			msgs = append(msgs, r.MsgsPerSec())
			secs = append(secs, r.Seconds)
			sess = append(sess, float64(r.Sessions))
			tls = append(tls, float64(r.TLS))
			dead = append(dead, float64(r.DeadHandouts))
			p50 = append(p50, r.DelayP50)
			p99 = append(p99, r.DelayP99)
			cpu = append(cpu, r.CacheCPU)
			if s, ok := rd[WayScache]; ok && way != WayScache {
				if m := s.MsgsPerSec(); m > 0 {
					rm = append(rm, r.MsgsPerSec()/m)
				}
				if s.Sessions > 0 {
					rs = append(rs, float64(r.Sessions)/float64(s.Sessions))
				}
			}
		}
		if len(msgs) == 0 {
			continue
		}
		rows = append(rows, Row{
			Way: way, Rounds: len(msgs),
			MsgsPerSec: Median(msgs), Seconds: Median(secs), Sessions: Median(sess), TLS: Median(tls),
			DeadHandouts: Median(dead), DelayP50: Median(p50), DelayP99: Median(p99), CacheCPU: Median(cpu),
			RatioMsgs: Median(rm), RatioSessions: Median(rs),
			MsgsMin: slices.Min(msgs), MsgsMax: slices.Max(msgs),
		})
	}
	return rows
}
