// Command goscache is a drop-in replacement for Postfix's scache(8)
// connection cache server.
//
// Started by master(8) (from master.cf), it speaks master's child protocol
// and serves the listening socket master hands it. Started by hand, it
// runs standalone:
//
//	goscache -listen unix:/path/to/socket [-ttl-limit 2s]
//	         [-status-update-time 600s] [-ipc-timeout 3600s]
//	         [-max-sessions N] [-log stderr|PATH] [-v]
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "goscache:", err)
		os.Exit(1)
	}
}
