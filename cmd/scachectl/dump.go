package main

import (
	"errors"
	"fmt"
	"io"
)

func dumpCommand() command {
	return command{
		name:     "dump",
		synopsis: "[-json]",
		summary:  "every destination with its endpoint bindings, every endpoint with its cached connections",
		run:      runDump,
	}
}

func runDump(e *env, args []string) error {
	fs := e.flags("dump", "[-json]")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := c.Dump()
	if errors.Is(err, errNoExtensions) {
		return e.fallback(*asJSON, dumpNote)
	}
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	d.Socket = e.socket
	if *asJSON {
		return writeJSON(e.stdout, d)
	}
	writeDump(e.stdout, d)
	return nil
}

func writeDump(w io.Writer, d *dumpView) {
	nb, nc := 0, 0
	for _, dv := range d.Destinations {
		nb += len(dv.Bindings)
	}
	for _, p := range d.Endpoints {
		nc += len(p.Connections)
	}
	fmt.Fprintf(w, "%s at %s: %s (%s), %s (%s)\n", d.Server, clock(d.Time),
		plural(len(d.Destinations), "destination"), plural(nb, "binding"),
		plural(len(d.Endpoints), "endpoint"), plural(nc, "connection"))
	for _, dv := range d.Destinations {
		fmt.Fprintf(w, "\ndestination %s\n", quote(dv.Label))
		for i, b := range dv.Bindings {
			fmt.Fprintf(w, "  binding %d  endpoint %s  (%s)\n", i+1, quote(b.Endpoint), plural(b.Connections, "connection"))
			fmt.Fprintf(w, "    age %s  ttl %s\n", dur(d.Time.Sub(b.Created)), dur(b.Expires.Sub(d.Time)))
			writeProps(w, "    | ", b.Property)
		}
	}
	for _, p := range d.Endpoints {
		fmt.Fprintf(w, "\nendpoint %s\n", quote(p.Label))
		for i, c := range p.Connections {
			peer := c.Peer
			if peer == "" {
				peer = "-"
			}
			fmt.Fprintf(w, "  connection %d  fd %d  peer %s\n", i+1, c.FD, peer)
			fmt.Fprintf(w, "    age %s  ttl %s\n", dur(d.Time.Sub(c.Created)), dur(c.Expires.Sub(d.Time)))
			writeProps(w, "    | ", c.Property)
		}
	}
}
