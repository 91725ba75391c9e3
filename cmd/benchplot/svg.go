package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH             = 720, 420
	marginL, marginR         = 80, 150
	marginT, marginB         = 40, 55
	innerW                   = plotW - marginL - marginR
	innerH                   = plotH - marginT - marginB
	tickCount                = 5
	markerR                  = 4
	whiskerHalf              = 5
	legendLineLen, legendGap = 24, 22
)

// seriesColor gives each server a fixed colour.
var seriesColor = map[string]string{
	nameScache:   "#d62728",
	nameGoscache: "#1f77b4",
	nameFloor:    "#7f7f7f",
}

var spareColors = []string{"#2ca02c", "#9467bd", "#8c564b", "#e377c2"}

// plotSVG draws the sweep's cycles per second (median, with the range as a
// whisker) against the number of clients on a log2 axis. It is written by
// hand to keep plotting libraries out of go.mod.
func plotSVG(r *results) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	w(`<text x="%d" y="22" font-size="15" text-anchor="middle">Throughput against concurrent clients (smtp(8) cycles per second)</text>`+"\n", plotW/2)
	if r.sweep == nil || len(r.sweep.Runs) == 0 {
		w(`<text x="%d" y="%d" text-anchor="middle">no sweep results</text></svg>`+"\n", plotW/2, plotH/2)
		return b.String()
	}
	ix := index(r.sweep.Runs, clientsLevel)
	levels := ix.levels()
	targets := targetsOf(r.sweep.Runs)
	ymax := 0.0
	for _, n := range levels {
		for _, t := range targets {
			if s := newSpread(ix.values(n, t, cps)); s.N > 0 {
				ymax = max(ymax, s.Max)
			}
		}
	}
	step := niceStep(ymax / tickCount)
	ytop := math.Ceil(ymax/step) * step
	if ytop == 0 {
		ytop = 1
	}
	lx0, lx1 := math.Log2(float64(levels[0])), math.Log2(float64(levels[len(levels)-1]))
	if lx1 == lx0 {
		lx0, lx1 = lx0-1, lx1+1
	}
	x := func(n int) float64 {
		return marginL + (math.Log2(float64(n))-lx0)/(lx1-lx0)*innerW
	}
	y := func(v float64) float64 { return marginT + innerH - v/ytop*innerH }

	// Axes, grid and ticks.
	for v := 0.0; v <= ytop+step/2; v += step {
		w(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y(v), marginL+innerW, y(v))
		w(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginL-6, y(v), thousands(v))
	}
	for _, n := range levels {
		w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(n), marginT, x(n), marginT+innerH)
		w(`<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(n), marginT+innerH+18, n)
	}
	w(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", marginL, marginT, innerW, innerH)
	w(`<text x="%d" y="%d" text-anchor="middle">concurrent clients (log scale)</text>`+"\n", marginL+innerW/2, plotH-12)
	w(`<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">cycles per second (median, range)</text>`+"\n", marginT+innerH/2)

	// Series.
	spare := 0
	for i, t := range targets {
		col, ok := seriesColor[t]
		if !ok {
			col = spareColors[spare%len(spareColors)]
			spare++
		}
		var pts []string
		for _, n := range levels {
			s := newSpread(ix.values(n, t, cps))
			if s.N == 0 {
				continue
			}
			px := x(n)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, y(s.Median)))
			w(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", px, y(s.Min), px, y(s.Max), col)
			w(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", px-whiskerHalf, y(s.Min), px+whiskerHalf, y(s.Min), col)
			w(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", px-whiskerHalf, y(s.Max), px+whiskerHalf, y(s.Max), col)
			w(`<circle cx="%.1f" cy="%.1f" r="%d" fill="%s"><title>%s, %d clients: %.0f cycles/s</title></circle>`+"\n", px, y(s.Median), markerR, col, html.EscapeString(t), n, s.Median)
		}
		w(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), col)
		ly := marginT + 10 + i*legendGap
		lx := marginL + innerW + 16
		w(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", lx, ly, lx+legendLineLen, ly, col)
		w(`<circle cx="%d" cy="%d" r="%d" fill="%s"/>`+"\n", lx+legendLineLen/2, ly, markerR, col)
		w(`<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", lx+legendLineLen+8, ly, html.EscapeString(t))
	}
	w("</svg>\n")
	return b.String()
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// thousands formats 12000 as "12k".
func thousands(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gk", v/1000)
	}
	return fmt.Sprintf("%g", v)
}
