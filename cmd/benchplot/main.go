// Command benchplot turns the JSON written by "scachebench -json" during
// "make bench-compare" into docs/BENCHMARKS.md and an SVG plot of
// throughput against concurrent clients.
//
// Usage:
//
//	benchplot -dir RESULTS [-out docs/BENCHMARKS.md] [-svg docs/bench/throughput.svg]
//	          [-postfix VERSION] [-commit REV] [-command TEXT] [-notes FILE]
//
// RESULTS holds sweep.json, reuse.json, the open-loop points
// open-{reuse,fresh}-{fixed,own50,own80}.json, scale.json and heap.json
// (any may be missing, not all).
//
//	benchplot -capacity FILE [-of scache,goscache] [-clients 16] [-fraction 0.8] [-each]
//
// prints an open-loop rate from a closed-loop results file instead:
// fraction of the lowest median cycles/s of the -of targets at -clients, or
// with -each one NAME=RATE per target, fraction of its own (what
// "scachebench -rate" takes).
// The machine description is read from RESULTS/machine.json; when that file
// is missing it is collected from this host and written there, so a report
// can be regenerated later from the same results.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "benchplot: %v\n", err)
		os.Exit(1)
	}
}

// run is benchplot without the process around it.
func run(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchplot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "`directory` with sweep.json, reuse.json, open-*.json, scale.json, heap.json (required)")
	out := fs.String("out", "docs/BENCHMARKS.md", "markdown `file` to write (- for stdout)")
	svg := fs.String("svg", "docs/bench/throughput.svg", "SVG `file` to write (empty: none); the markdown links it relative to -out")
	postfix := fs.String("postfix", "", "Postfix version, recorded in machine.json when it is created")
	commit := fs.String("commit", "", "goscache revision, recorded in machine.json when it is created")
	command := fs.String("command", "make bench-compare", "command line shown as the way to reproduce")
	notes := fs.String("notes", "", "markdown `file` appended as the report's analysis (hand-written; optional)")
	capacity := fs.String("capacity", "", "print an open-loop rate for a results `file` instead, and exit: -fraction of the lowest median cycles/s of the -of targets at -clients (with -each: NAME=RATE for each, fraction of its own)")
	of := fs.String("of", "scache", "with -capacity: comma-separated target `names`")
	each := fs.Bool("each", false, "with -capacity: print NAME=RATE,... with each target's own rate, for scachebench -rate")
	clients := fs.Int("clients", 16, "with -capacity: the client count")
	fraction := fs.Float64("fraction", 0.8, "with -capacity: the share of the capacity to offer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *capacity != "" {
		names := strings.Split(*of, ",")
		rates := make([]string, len(names))
		lowest := 0.0
		for i, name := range names {
			rate, err := openLoopRate(*capacity, name, *clients, *fraction)
			if err != nil {
				return err
			}
			rates[i] = fmt.Sprintf("%s=%.0f", name, rate)
			if i == 0 || rate < lowest {
				lowest = rate
			}
		}
		var err error
		if *each {
			_, err = fmt.Fprintln(stdout, strings.Join(rates, ","))
		} else {
			_, err = fmt.Fprintf(stdout, "%.0f\n", lowest)
		}
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-dir is required and there are no arguments")
	}
	res, err := loadResults(*dir)
	if err != nil {
		return err
	}
	m, err := loadMachine(filepath.Join(*dir, "machine.json"), *postfix, *commit)
	if err != nil {
		return err
	}
	res.machine = m
	res.command = *command
	if *notes != "" {
		b, err := os.ReadFile(*notes)
		if err != nil {
			return err
		}
		res.notes = string(b)
	}
	if *svg != "" {
		if err := writeFile(*svg, plotSVG(res)); err != nil {
			return err
		}
		res.svgName = filepath.ToSlash(*svg)
		if *out != "-" {
			if rel, err := filepath.Rel(filepath.Dir(*out), *svg); err == nil {
				res.svgName = filepath.ToSlash(rel)
			}
		}
	}
	if *svg != "" && res.e2e != nil {
		path := filepath.Join(filepath.Dir(*svg), e2eSVGFile)
		if err := writeFile(path, plotE2E(res.e2e)); err != nil {
			return err
		}
		res.e2eSVG = filepath.ToSlash(path)
		if *out != "-" {
			if rel, err := filepath.Rel(filepath.Dir(*out), path); err == nil {
				res.e2eSVG = filepath.ToSlash(rel)
			}
		}
	}
	md := markdown(res)
	if *out == "-" {
		_, err := io.WriteString(stdout, md)
		return err
	}
	return writeFile(*out, md)
}

// openLoopRate returns fraction of the median cycles per second of target
// at clients in the results file path.
func openLoopRate(path, target string, clients int, fraction float64) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var rep benchReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	s := newSpread(index(rep.Runs, clientsLevel).values(clients, target, cps))
	if s.N == 0 || s.Median <= 0 {
		return 0, fmt.Errorf("%s: no run of %s with %d clients", path, target, clients)
	}
	return s.Median * fraction, nil
}

// writeFile writes s to path through a temporary file, so a failed run
// leaves the old file in place.
func writeFile(path, s string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
