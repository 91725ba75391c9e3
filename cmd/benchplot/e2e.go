package main

import (
	"errors"
	"fmt"
	"html"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/goscache/goscache/compat-tests/e2ebench"
)

// Goal of issue 18 §4, judged within the run's noise: goscache delivers at
// least as many messages per second as Postfix's scache, opening no more
// SMTP sessions. Noise is the spread of the within-round ratios; the goal
// counts as met when the median ratio is within it of 1 or better.
const (
	e2eFile    = "e2e.json"
	e2eSVGFile = "e2e.svg"
)

// e2eReport is the results of "make bench-e2e".
type e2eReport = e2ebench.Report

// loadE2E reads the end-to-end results of "make bench-e2e" from dir, nil
// when there are none.
func loadE2E(dir string) (*e2ebench.Report, error) {
	rep, err := e2ebench.Read(filepath.Join(dir, e2eFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(rep.Runs) == 0 {
		return nil, nil
	}
	return rep, nil
}

// e2eRatios returns the within-round ratios of way to scache by f.
func e2eRatios(rep *e2ebench.Report, way string, f func(e2ebench.Run) float64) []float64 {
	byRound := map[int]map[string]e2ebench.Run{}
	for _, r := range rep.Runs {
		if byRound[r.Round] == nil {
			byRound[r.Round] = map[string]e2ebench.Run{}
		}
		byRound[r.Round][r.Way] = r
	}
	var v []float64
	for _, rd := range byRound {
		a, okA := rd[way]
		s, okS := rd[e2ebench.WayScache]
		if okA && okS && f(s) > 0 {
			v = append(v, f(a)/f(s))
		}
	}
	return v
}

func runMsgs(r e2ebench.Run) float64     { return r.MsgsPerSec() }
func runSessions(r e2ebench.Run) float64 { return float64(r.Sessions) }
func runCPU(r e2ebench.Run) float64      { return r.CacheCPU }

// writeE2E writes the end-to-end section: delivery through real Postfix.
func writeE2E(w writer, r *results) {
	rep := r.e2e
	c := rep.Config
	m := rep.Machine
	w("## Delivery through real Postfix (issue 18 §4)\n\n")
	w("Generated from docs/bench/%s, written by `%s` (compat-tests/bench_e2e_test.go). ", e2eFile, rep.Command)
	w("Three private Postfix instances (compat-tests/pfx: their own master(8), queue and configuration) deliver the same mail, one way after the other, interleaved in each round: ")
	w("**none** (no connection cache), **scache** (Postfix's scache(8)) and **goscache** (goscache named as the scache service's command). ")
	w("Each run injects %d messages over SMTP into the instance's smtpd(8) on hold, spread evenly over %d destinations (one sink address each, 127.0.0.x), ", c.Messages, c.Destinations)
	w("then releases them at once (postsuper -H ALL, postqueue -f); the clock runs from the release to an empty queue with every message at the sinks, so injection speed on a loaded machine does not count. ")
	w("Up to %d smtp(8) processes (default_process_limit), destination concurrency up to %d, connection caching on for every destination (smtp_connection_cache_destinations; off for none), smtp_connection_cache_time_limit %s. ", c.ProcessLimit, c.DestConcurrency, c.CacheTimeLimit)
	w("The sinks (compat-tests/sink) wait %d ms before the greeting and before every reply, TLS handshake included: a WAN round trip per command. ", c.RTTMs)
	w("%d destinations are reached through a transport that requires STARTTLS (smtp_tls_connection_reuse = %s, a full handshake per new session); ", c.TLSDestinations, yesNo(c.TLSReuse))
	w("%d closes connections idle for %d ms, so the cache can hand out dead connections.\n\n", c.IdleCloseDests, c.IdleCloseMs)
	w("Sessions and TLS handshakes are counted at the sinks; dead hand-outs are the cache daemon's lookup hits (its statistics lines) minus the deliveries over a cached connection (conn_use ≥ 2 in smtp(8)'s log); ")
	w("queue delay is b+c+d of each delivered message's delays= field (after the release: waiting for an smtp(8) process, connection set-up, transmission); the whole run's mail is released at once, so the queue delay is mostly the backlog draining at the delivery rate (p50 about half the run); ")
	w("cache CPU is user+system time of the cache daemon's processes from /proc/PID/stat, every process master(8) ran during the run.\n\n")
	w("Machine: %s, %d cores, %d MB, kernel %s, Postfix %s, goscache %s, %s, %s. ", orUnknown(m.CPU), m.Cores, m.MemoryMB, orUnknown(m.Kernel), orUnknown(m.Postfix), orUnknown(m.Commit), m.GoVersion, m.Date)
	if loadAbove(m.LoadBefore, m.Cores) || loadAbove(m.LoadAfter, m.Cores) {
		w("**Load average %s at the start, %s at the end**: other work shared the %d cores, so absolute rates are low and noisy; the ways ran interleaved under the same load.\n\n", m.LoadBefore, m.LoadAfter, m.Cores)
	} else {
		w("Load average %s at the start, %s at the end (1, 5 and 15 minutes): no more than the run's own work on %d cores; the ways ran interleaved.\n\n", m.LoadBefore, m.LoadAfter, m.Cores)
	}

	rows := e2ebench.Summarize(rep)
	w("Medians over %d rounds (range of messages/s in brackets; ratios are medians of the within-round ratios to scache):\n\n", c.Rounds)
	w("| way | messages/s | ×scache | SMTP sessions | ×scache | TLS handshakes | dead hand-outs | queue delay p50 | p99 | cache CPU s |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range rows {
		rm, rs := "1", "1"
		if row.Way != e2ebench.WayScache {
			rm, rs = fmt.Sprintf("%.2f", row.RatioMsgs), fmt.Sprintf("%.2f", row.RatioSessions)
		}
		dead, cpuS := fmt.Sprintf("%.0f", row.DeadHandouts), fmt.Sprintf("%.2f", row.CacheCPU)
		if row.Way == e2ebench.WayNone {
			dead, cpuS = "–", "–"
		}
		w("| %s | %.1f [%.1f–%.1f] | %s | %.0f | %s | %.0f | %s | %.2f s | %.2f s | %s |\n",
			row.Way, row.MsgsPerSec, row.MsgsMin, row.MsgsMax, rm, row.Sessions, rs, row.TLS, dead, row.DelayP50, row.DelayP99, cpuS)
	}
	w("\n")
	if r.e2eSVG != "" {
		w("![messages per second and SMTP sessions, each way, every round](%s)\n\n", r.e2eSVG)
	}
	msgs := newSpread(e2eRatios(rep, e2ebench.WayGoscache, runMsgs))
	sess := newSpread(e2eRatios(rep, e2ebench.WayGoscache, runSessions))
	noneMsgs := newSpread(e2eRatios(rep, e2ebench.WayNone, runMsgs))
	if msgs.N > 0 && sess.N > 0 {
		w("| goal (issue 18 §4) | measured (median, range over rounds) | |\n|---|---|---|\n")
		w("| goscache messages/s ≥ scache's, within the noise | %.2f× (%.2f–%.2f) | %s |\n", msgs.Median, msgs.Min, msgs.Max, verdict(msgs.Median >= 1 || msgs.Max >= 1))
		w("| goscache SMTP sessions ≤ scache's, within the noise | %.2f× (%.2f–%.2f) | %s |\n", sess.Median, sess.Min, sess.Max, verdict(sess.Median <= 1 || sess.Min <= 1))
		if noneMsgs.N > 0 {
			w("| both far ahead of no cache (none/scache messages/s) | %.2f× (%.2f–%.2f) | %s |\n", noneMsgs.Median, noneMsgs.Min, noneMsgs.Max, verdict(noneMsgs.Max < 0.8))
		}
		if cpuR := newSpread(e2eRatios(rep, e2ebench.WayGoscache, runCPU)); cpuR.N > 0 {
			w("| (not a goal) the cache daemon's CPU seconds, goscache/scache | %.2f× (%.2f–%.2f) | |\n", cpuR.Median, cpuR.Min, cpuR.Max)
		}
		w("\n\"Within the noise\": met when the median ratio is on the right side of 1, or the range over rounds reaches it. \"Far ahead\": no cache below 0.8× scache in every round.\n\n")
	}
	w("Every run (seconds from the release; injection time apart):\n\n")
	w("| round | order | way | delivered | s | inject s | messages/s | sessions | TLS | reused | hits | dead | delay p50 | p99 | cache CPU s (pids) | load |\n")
	w("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range rep.Runs {
		w("| %d | %d | %s | %d | %.1f | %.1f | %.1f | %d | %d | %d | %d | %d | %.2f | %.2f | %.2f (%d) | %s |\n",
			x.Round, x.Order, x.Way, x.Delivered, x.Seconds, x.InjectSeconds, x.MsgsPerSec(), x.Sessions, x.TLS, x.Reused, x.Hits, x.DeadHandouts, x.DelayP50, x.DelayP99, x.CacheCPU, x.CachePids, x.Load)
	}
	w("\n")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// e2eColor gives each way a fixed colour.
var e2eColor = map[string]string{
	e2ebench.WayNone:     "#7f7f7f",
	e2ebench.WayScache:   "#d62728",
	e2ebench.WayGoscache: "#1f77b4",
}

// plotE2E draws two panels, messages per second and SMTP sessions: one bar
// per way (the median) with a dot for every round.
func plotE2E(rep *e2ebench.Report) string {
	const (
		w, h           = 640, 300
		panelW, panelH = 240, 200
		top, left      = 50, 70
		gap            = 80
		barW           = 50
	)
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", w/2,
		html.EscapeString(fmt.Sprintf("Delivery through real Postfix: %d messages, %d ms round trip", rep.Config.Messages, rep.Config.RTTMs)))
	rows := e2ebench.Summarize(rep)
	panels := []struct {
		title string
		f     func(e2ebench.Run) float64
		med   func(e2ebench.Row) float64
	}{
		{"messages per second (higher is better)", runMsgs, func(r e2ebench.Row) float64 { return r.MsgsPerSec }},
		{"SMTP sessions opened (lower is better)", runSessions, func(r e2ebench.Row) float64 { return r.Sessions }},
	}
	for i, pn := range panels {
		x0 := left + i*(panelW+gap)
		top := 0.0
		for _, r := range rep.Runs {
			top = math.Max(top, pn.f(r))
		}
		top = niceCeil(top)
		if top <= 0 {
			top = 1
		}
		y := func(v float64) float64 { return float64(50+panelH) - v/top*panelH }
		p(`<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+panelW/2, 42, html.EscapeString(pn.title))
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, 50, x0, 50+panelH)
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, 50+panelH, x0+panelW, 50+panelH)
		for k := 0; k <= 4; k++ {
			v := top * float64(k) / 4
			p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y(v)+4, trimFloat(v))
			p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y(v), x0+panelW, y(v))
		}
		for j, row := range rows {
			cx := x0 + 20 + j*(panelW-40)/max(len(rows)-1, 1)
			v := pn.med(row)
			p(`<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s" fill-opacity="0.6"/>`+"\n", cx-barW/2, y(v), barW, float64(50+panelH)-y(v), e2eColor[row.Way])
			for _, r := range rep.Runs {
				if r.Way == row.Way {
					p(`<circle cx="%d" cy="%.1f" r="3" fill="black"/>`+"\n", cx, y(pn.f(r)))
				}
			}
			p(`<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", cx, 50+panelH+16, row.Way)
		}
	}
	p(`<text x="%d" y="%d" text-anchor="middle" fill="#555">bars: median over rounds; dots: each round</text>`+"\n", w/2, h-12)
	p("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 0
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}

// loadAbove reports whether any of the load averages in loads ("1.2 3.4
// 5.6", as /proc/loadavg begins) is above cores: the machine had more
// runnable work than the run's own. An unreadable figure counts as above.
func loadAbove(loads string, cores int) bool {
	f := strings.Fields(loads)
	if len(f) == 0 || cores <= 0 {
		return true
	}
	for _, v := range f {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x > float64(cores) {
			return true
		}
	}
	return false
}
