// Command scachebench measures a connection cache: it runs smtp(8)'s
// request cycle from N concurrent clients against one or more cache
// sockets (goscache, Postfix's scache(8), the floor), and serves the floor,
// the least a server can do to answer that cycle. It is a developer tool,
// built by "make build" and not installed or packaged.
//
// Usage:
//
//	scachebench [-socket PATH] [-timeout D] [flags]
//	scachebench -floor-master ARGV0 [master's arguments]
//
// Run "scachebench -h" for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goscache/goscache/mastercompat"
)

// Exit statuses of scachebench.
const (
	exitOK    = 0
	exitError = 1 // the run failed
	exitUsage = 2 // bad command line
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// env is what a run works with: the output writers and the connection
// settings.
type env struct {
	ctx     context.Context
	stdout  io.Writer
	stderr  io.Writer
	socket  string        // -socket: the target when no -target is given
	timeout time.Duration // -timeout: dial and each request
}

// usageError is a bad command line. The flag package has already printed
// the usage text when printed is true.
type usageError struct {
	msg     string
	printed bool
}

func (e *usageError) Error() string { return e.msg }

// run is scachebench without the process around it: args excludes the
// program name. It returns nil on success, flag.ErrHelp after printing help.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-floor-master" || args[0] == "--floor-master") {
		return serveFloorMaster(ctx, mastercompat.StartOptions{Argv: args[1:], Stderr: stderr, FatalDelay: time.Second})
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr}
	return runBench(e, args)
}

// newFlags returns the FlagSet of scachebench with its global flags
// (-socket, -timeout) bound to e.
func (e *env) newFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("scachebench", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&e.socket, "socket", "", "cache socket `path` of the server under test, named \"server\" (when no -target is given)")
	fs.DurationVar(&e.timeout, "timeout", 10*time.Second, "time limit for connecting and for each request")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: scachebench %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with fs; scachebench takes no positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error(), printed: true}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0)), printed: true}
	}
	return nil
}

// exitCode prints err (unless flag already did) and maps it to an exit
// status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if _, ok := errors.AsType[*mastercompat.LoggedError](err); ok {
		return exitError // logged to Postfix's log already
	}
	if ue, ok := errors.AsType[*usageError](err); ok {
		if !ue.printed {
			fmt.Fprintf(stderr, "scachebench: %s\n", ue.msg)
		}
		return exitUsage
	}
	fmt.Fprintf(stderr, "scachebench: %s\n", err)
	return exitError
}
