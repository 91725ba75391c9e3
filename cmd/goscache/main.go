// Command goscache is a drop-in replacement for Postfix's scache(8)
// connection cache server.
//
// Started by master(8) (from master.cf), it speaks master's child protocol
// and serves the listening socket master hands it. Started by hand, it
// runs standalone:
//
//	goscache -listen unix:/path/to/socket [-ttl-limit 2s]
//	         [-status-update-time 600s] [-ipc-timeout 3600s]
//	         [-max-sessions N] [-socket-mode 0600] [-allow-group GROUP]
//	         [-log stderr|PATH] [-v]
//
// Standalone, the socket is created 0600 and every client is checked with
// SO_PEERCRED: root, the daemon's own user and members of -allow-group
// only. SIGHUP, SIGINT and SIGTERM end it gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/goscache/goscache/mastercompat"
)

func main() {
	os.Exit(exitCode(run(context.Background(), os.Args, os.Stdout, os.Stderr), os.Stderr))
}

// exitCode returns the exit status for run's result and prints the error
// on stderr, unless it is a [*mastercompat.LoggedError]: that one has been logged already
// in Postfix's format (and on stderr too under -V), as scache logs it.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if _, ok := errors.AsType[*mastercompat.LoggedError](err); !ok {
		fmt.Fprintln(stderr, "goscache:", err)
	}
	return 1
}
