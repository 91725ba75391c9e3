// Command scachectl looks inside a running connection cache: goscache, or
// (through the standard requests only) Postfix's own scache(8).
//
// Usage:
//
//	scachectl [-socket PATH] [-timeout D] COMMAND [flags] [args]
//
// Run "scachectl help" for the list of commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}
