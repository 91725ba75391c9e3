package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/goscache/goscache/scache/client"
)

func watchCommand() command {
	return command{
		name:     "watch",
		synopsis: "[-json] [-dump] [-interval D] [-count N]",
		summary:  "show stats (and the dump: -dump) again every interval until interrupted",
		run:      runWatch,
	}
}

func runWatch(e *env, args []string) error {
	fs := e.flags("watch", "[-json] [-dump] [-interval D] [-count N]")
	asJSON := fs.Bool("json", false, "print one JSON object per refresh, one per line")
	withDump := fs.Bool("dump", false, "show the cache contents too")
	interval := fs.Duration("interval", 2*time.Second, "time between refreshes")
	count := fs.Int("count", 0, "stop after `N` refreshes (0: until interrupted)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *interval <= 0 {
		return &usageError{msg: "watch: -interval must be positive"}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	clear := !*asJSON && isTerminal(e.stdout)
	t := time.NewTicker(*interval)
	defer t.Stop()
	for i := 0; *count == 0 || i < *count; i++ {
		if i > 0 {
			select {
			case <-e.ctx.Done():
				return nil
			case <-t.C:
			}
		}
		s, err := c.Stats()
		if errors.Is(err, client.ErrNoExtensions) {
			return e.statsFallback(*asJSON, announced(c))
		}
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		s.Socket = e.socket
		var d *dumpView
		if *withDump {
			if d, err = c.Dump(); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			d.Socket = e.socket
		}
		if *asJSON {
			if err := writeJSONLine(e, s, d); err != nil {
				return err
			}
			continue
		}
		if clear {
			fmt.Fprint(e.stdout, "\x1b[H\x1b[2J")
		} else if i > 0 {
			fmt.Fprintln(e.stdout, "----")
		}
		writeStats(e.stdout, s)
		if d != nil {
			fmt.Fprintln(e.stdout)
			writeDump(e.stdout, d)
		}
	}
	return nil
}

// watchLine is one line of "watch -json".
type watchLine struct {
	Stats *statsView `json:"stats"`
	Dump  *dumpView  `json:"dump,omitempty"`
}

func writeJSONLine(e *env, s *statsView, d *dumpView) error {
	return writeJSONCompact(e.stdout, watchLine{Stats: s, Dump: d})
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
