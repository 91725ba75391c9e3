package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Exit statuses of scachectl.
const (
	exitOK       = 0
	exitError    = 1 // the command failed
	exitUsage    = 2 // bad command line
	exitFallback = 3 // the peer has no goscache extensions; the fallback was shown
)

// defaultQueueDir and defaultServiceName are Postfix's compiled-in defaults,
// used when postconf is missing or fails.
const (
	defaultQueueDir    = "/var/spool/postfix"
	defaultServiceName = "scache"
)

// command is one subcommand. Its run function parses its own flags (with
// [env.flags]) and writes to e.stdout.
type command struct {
	name     string
	synopsis string // what follows the name in usage lines
	summary  string // one line for "scachectl help"
	run      func(e *env, args []string) error
}

// commands lists the subcommands in the order "scachectl help" shows them.
// A subcommand defined in another file is added with one line here.
func commands() []command {
	return []command{
		statsCommand(),
		dumpCommand(),
		findDestCommand(),
		findEndpCommand(),
		saveEndpCommand(),
		saveDestCommand(),
		watchCommand(),
		metricsCommand(),
		versionCommand(),
	}
}

// env is what every subcommand works with: the output writers and the
// connection settings from the global flags.
type env struct {
	ctx     context.Context
	stdout  io.Writer
	stderr  io.Writer
	socket  string        // -socket, or the instance's socket from postconf
	inst    instance      // -c or MAIL_CONFIG: the Postfix instance
	timeout time.Duration // -timeout: dial and each request
	// timeoutSet is true when -timeout was given (metrics has its own
	// default, under Prometheus's scrape timeout).
	timeoutSet bool
	// socketFromInstance is true when the socket was looked up from the
	// instance (no -socket): the exporter looks it up again per scrape.
	socketFromInstance bool
	dial               func(ctx context.Context, path string, timeout time.Duration) (cacheConn, error)
}

// usageError is a bad command line. The flag package (or run) has already
// printed the usage text when printed is true.
type usageError struct {
	msg     string
	printed bool
}

func (e *usageError) Error() string { return e.msg }

// errFallback marks a command that could only show what the standard
// requests show, because the peer answered the extension request with
// status 1 (Postfix's scache does).
var errFallback = errors.New("the peer does not support goscache's extension requests (it answered status=1, unrecognized request): this is Postfix's own scache(8) or another server without them; shown above is what the standard requests can tell")

// run is scachectl without the process around it: args excludes the program
// name. It returns nil on success, flag.ErrHelp after printing help.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, dial: dialScache}
	fs := flag.NewFlagSet("scachectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&e.socket, "socket", "", "cache socket `path` (default: $(postconf -h queue_directory)/private/$(postconf -h connection_cache_service_name) of the instance)")
	configDir := fs.String("c", "", "Postfix configuration `directory` of the instance, as postconf -c (default: $MAIL_CONFIG, else the default instance)")
	fs.DurationVar(&e.timeout, "timeout", 10*time.Second, "time limit for connecting and for each request (metrics: 5s unless given)")
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error(), printed: true}
	}
	fs.Visit(func(f *flag.Flag) { e.timeoutSet = e.timeoutSet || f.Name == "timeout" })
	e.inst = pickInstance(*configDir, os.LookupEnv)
	if e.socket != "" && *configDir != "" {
		return &usageError{msg: "give -socket or -c, not both"}
	}
	if fs.NArg() == 0 {
		usage(stderr, fs)
		return &usageError{msg: "no command given", printed: true}
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		usage(stdout, fs)
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			if e.socket == "" {
				var err error
				if e.socket, err = e.inst.socket(ctx); err != nil {
					return err
				}
				e.socketFromInstance = true
			}
			return c.run(e, rest)
		}
	}
	return &usageError{msg: fmt.Sprintf("unknown command %q (try: scachectl help)", name)}
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: scachectl [-c CONFIG_DIR | -socket PATH] [-timeout D] COMMAND [flags] [args]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		fmt.Fprintf(w, "  %-10s   scachectl %s %s\n", "", c.name, c.synopsis)
	}
	fmt.Fprintf(w, "\nLabels and properties are written and read with Go string escapes (\\n for a newline).\n")
	fmt.Fprintf(w, "Exit status: 0 ok, 1 error, 2 usage, 3 peer without goscache extensions (fallback shown).\n\nglobal flags:\n")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// exitCode prints err (unless flag already did) and maps it to an exit
// status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if ue, ok := errors.AsType[*usageError](err); ok {
		if !ue.printed {
			fmt.Fprintf(stderr, "scachectl: %s\n", ue.msg)
		}
		return exitUsage
	}
	fmt.Fprintf(stderr, "scachectl: %s\n", err)
	if errors.Is(err, errFallback) {
		return exitFallback
	}
	return exitError
}

// flags returns a FlagSet for subcommand name that reports to e.stderr.
func (e *env) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("scachectl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: scachectl %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with fs, allowing flags after positional arguments
// ("find-endp LABEL -take"); "--" ends the flags. It returns the positional
// arguments and checks their number is within [min, max] (max < 0: any).
func parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error(), printed: true}
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		fs.Usage()
		msg := "missing argument"
		if len(pos) > min {
			msg = "too many arguments"
		}
		return nil, &usageError{msg: strings.TrimPrefix(fs.Name(), "scachectl ") + ": " + msg}
	}
	return pos, nil
}
