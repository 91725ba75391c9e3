package main

import (
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
	return runView(e, args, "dump", cacheConn.Dump, func(d *dumpView) *string { return &d.Socket }, writeDump, dumpNote)
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
