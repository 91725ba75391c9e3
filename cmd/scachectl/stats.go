package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/goscache/goscache/scache/client"
)

func statsCommand() command {
	return command{
		name:     "stats",
		synopsis: "[-json]",
		summary:  "lookup counters, cache size now and at peak, evictions, uptime, clients",
		run:      runStats,
	}
}

func runStats(e *env, args []string) error {
	return runView(e, args, "stats", cacheConn.Stats, func(s *statsView) *string { return &s.Socket }, writeStats, statsNote)
}

// runView is what dump and stats share: fetch one view with an extension
// request and print it as a table (write) or JSON; against a peer without
// the extension requests (Postfix's scache), print note instead.
func runView[V any](e *env, args []string, name string, fetch func(cacheConn) (V, error),
	socket func(V) *string, write func(io.Writer, V), note string) error {
	fs := e.flags(name, "[-json]")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := fetch(c)
	if errors.Is(err, client.ErrNoExtensions) {
		return e.fallback(*asJSON, note, announced(c))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	*socket(v) = e.socket
	if *asJSON {
		return writeJSON(e.stdout, v)
	}
	write(e.stdout, v)
	return nil
}

// fallbackView is the JSON shown for a peer without the extension requests.
type fallbackView struct {
	Server     string `json:"server"`
	Socket     string `json:"socket"`
	Extensions bool   `json:"extensions"`
	Note       string `json:"note"`
}

const (
	statsNote = `statistics are not available over Postfix's protocol: scache logs them as "statistics:" lines every connection_cache_status_update_time (600s) and when it exits`
	dumpNote  = `the cache contents cannot be listed with Postfix's standard requests: look up one label with find-dest/find-endp (a hit takes the connection; it is given back unless -take)`
)

func (e *env) statsFallback(asJSON, announced bool) error {
	return e.fallback(asJSON, statsNote, announced)
}

// announced reports whether the server behind c announced its protocol
// when it answered (Postfix 3.6 and later; Postfix 3.5 does not).
func announced(c cacheConn) bool {
	a, ok := c.(interface{ Announced() bool })
	return ok && a.Announced()
}

func (e *env) fallback(asJSON bool, note string, announced bool) error {
	if asJSON {
		if err := writeJSON(e.stdout, fallbackView{Server: "postfix", Socket: e.socket, Note: note}); err != nil {
			return err
		}
		return errFallback
	}
	fmt.Fprintf(e.stdout, "server       Postfix scache (no goscache extension requests)\n")
	fmt.Fprintf(e.stdout, "socket       %s\n", e.socket)
	if announced {
		fmt.Fprintf(e.stdout, "protocol     connection_cache_protocol (announced: Postfix 3.6 or later)\n")
	} else {
		fmt.Fprintf(e.stdout, "protocol     connection_cache_protocol (not announced: Postfix 3.5)\n")
	}
	fmt.Fprintf(e.stdout, "note         %s\n", note)
	return errFallback
}

func writeStats(w io.Writer, s *statsView) {
	fmt.Fprintf(w, "server       %s\n", s.Server)
	if s.Build.Version != "" {
		fmt.Fprintf(w, "version      %s\n", s.Build)
	} else {
		fmt.Fprintf(w, "version      not reported (a goscache from before 0.1.0-1)\n")
	}
	fmt.Fprintf(w, "socket       %s\n", s.Socket)
	fmt.Fprintf(w, "time         %s\n", clock(s.Time))
	fmt.Fprintf(w, "uptime       %s (since %s)\n", s.Time.Sub(s.Start).Round(time.Second), clock(s.Start))
	fmt.Fprintf(w, "clients      %d (connected now, this scachectl not counted)\n", s.Clients)
	fmt.Fprintf(w, "lookups      %8s %8s %8s\n", "hits", "miss", "success")
	for _, l := range []struct {
		name string
		v    lookupView
	}{{"domain", s.Lookups.Domain}, {"address", s.Lookups.Address}} {
		pct := "-"
		if p := l.v.success(); p >= 0 {
			pct = fmt.Sprintf("%d%%", p)
		}
		fmt.Fprintf(w, "  %-10s %8d %8d %8s\n", l.name, l.v.Hits, l.v.Misses, pct)
	}
	fmt.Fprintf(w, "cached now   domains=%d addresses=%d connections=%d\n", s.Cached.Domains, s.Cached.Addresses, s.Cached.Connections)
	fmt.Fprintf(w, "peak         domains=%d addresses=%d connections=%d\n", s.Peak.Domains, s.Peak.Addresses, s.Peak.Connections)
	fmt.Fprintf(w, "evictions    expired=%d limit=%d closed=%d dead=%d expired_bindings=%d\n",
		s.Evictions.Expired, s.Evictions.Limit, s.Evictions.Closed, s.Evictions.Dead, s.Evictions.ExpiredBindings)
}

// clock shows a time in the local zone, to the second.
func clock(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeJSONCompact(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
