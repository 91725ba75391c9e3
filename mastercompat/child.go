package mastercompat

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Service is what one master(8) child adds to the start-up every child
// shares: its name, its own parameters, and the steps only it takes.
type Service struct {
	// Name is the service name logged before argv is parsed, or when argv
	// cannot be, e.g. "scache".
	Name string
	// Defaults are the service's own parameter defaults as `postconf -d`
	// prints them, added to the skeleton's (a name the skeleton knows
	// gets the service's default).
	Defaults map[string]string
	// StartupParams, when set, returns the parameters the service expands
	// at start-up, once main.cf and argv's overrides are in (the list may
	// depend on them); a syntax error in any of them is fatal, with
	// Postfix's warnings and its "dictionary mail_dict: macro processing
	// error".
	StartupParams func(cfg *Config) []string
	// Configure, when set, reads the service's own parameters once logging
	// is up, before the argument checks, as the service's pre-init would.
	// An error is fatal.
	Configure func(cfg *Config) error
	// BeforeJail, when set, runs after the descriptors are taken over and
	// mail_owner is looked up, before chroot and setuid: the last moment
	// /etc/passwd and /etc/group can be read. An error is fatal.
	BeforeJail func(c *Child) error
}

// StartOptions are the process-level inputs of [Start], replaceable in
// tests.
type StartOptions struct {
	Argv       []string                    // the command line master built, argv[0] included
	LookupEnv  func(string) (string, bool) // nil means os.LookupEnv
	Stderr     io.Writer                   // receives the log lines too under -V
	SyslogPath string                      // "" means /dev/log
	FatalDelay time.Duration               // Postfix's msg_fatal sleeps 1s before exiting
	StdinTTY   func() bool                 // reports whether fd 0 is a terminal; nil asks the kernel
}

// Child is a started master(8) child: its arguments and configuration,
// its logger, the listeners master handed it and the status channel back
// to master. Close releases the status channel and the log sinks.
type Child struct {
	Args      *Args
	Config    *Config
	Params    Params
	Owner     *Owner       // mail_owner when -u asked for it, else nil
	Logger    *slog.Logger // Postfix's log lines (LevelFatal for msg_fatal)
	Listeners []net.Listener
	Master    *Master

	env        masterEnv
	level      *slog.LevelVar // debug under -v or MAIL_VERBOSE
	pid        int
	fatalDelay time.Duration
	closers    []io.Closer
}

// LoggedError reports a fatal error that has been logged in Postfix's
// format; the process should exit with status 1 and print nothing more.
type LoggedError struct{ Text string }

// Error returns "fatal: " and the text that was logged.
func (e *LoggedError) Error() string { return "fatal: " + e.Text }

// Start does what Postfix's multi_server_main does before it serves: it
// ignores SIGPIPE and SIGXFSZ and leaves SIGTERM and SIGHUP at their
// defaults (master's "postfix stop" must kill the child without
// statistics), parses argv, reads the environment and main.cf, opens the
// log, checks the arguments, takes over master's descriptors, and enters
// the chroot jail and drops privileges as -c and -u ask. Every failure is
// logged as Postfix's fatal line and returned as a [*LoggedError]; the
// Child is then already closed.
func Start(ctx context.Context, svc Service, o StartOptions) (*Child, error) {
	signal.Ignore(syscall.SIGPIPE, syscall.SIGXFSZ)
	signal.Reset(syscall.SIGTERM, syscall.SIGHUP)
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.StdinTTY == nil {
		o.StdinTTY = func() bool {
			_, err := unix.IoctlGetTermios(0, unix.TCGETS)
			return err == nil
		}
	}
	c := &Child{pid: os.Getpid(), level: new(slog.LevelVar), fatalDelay: o.FatalDelay}
	if err := c.start(ctx, svc, o); err != nil {
		for _, l := range c.Listeners {
			l.Close()
		}
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Child) start(ctx context.Context, svc Service, o StartOptions) error {
	argsErr := c.earlyLog(svc, o)
	cfg, err := readConfig(c.env.ConfigDir)
	if err != nil {
		return c.Fatal(ctx, err)
	}
	c.Config = cfg
	cfg.addDefaults(svc.Defaults)
	for _, w := range cfg.warnings {
		c.Logger.Warn(w)
	}
	if argsErr != nil {
		return c.Fatal(ctx, argsErr)
	}
	if err := c.configure(ctx, svc); err != nil {
		return err
	}
	if err := c.openLog(ctx, o); err != nil {
		return err
	}
	if err := c.check(ctx, svc, o); err != nil {
		return err
	}
	return c.enter(ctx, svc)
}

// earlyLog parses argv (it has no side effects) so that the early log tag
// can use the service name, and opens the log used before main.cf is read:
// the tag from MAIL_LOGTAG, postlog if master exported POSTLOG_SERVICE,
// else syslog (maillog_client_init). It returns argv's error, which is
// reported in Postfix's order, after main.cf was read.
func (c *Child) earlyLog(svc Service, o StartOptions) error {
	c.env = readEnv(o.LookupEnv)
	if c.env.Verbose {
		c.level.Set(slog.LevelDebug)
	}
	args, argsErr := parseArgs(o.Argv)
	service := svc.Name
	if args != nil {
		c.Args = args
		service = args.serviceName
		if args.verbose > 0 {
			c.level.Set(slog.LevelDebug)
		}
	}
	logTag := c.env.LogTag
	if logTag == "" {
		logTag = "postfix"
	}
	tag := logTag + "/" + service
	var sink logSink
	if c.env.PostlogService != "" {
		host := c.env.PostlogHostname
		if host == "" {
			host = "amnesiac"
		}
		pl, _ := dialPostlog(c.env.PostlogService, tag, host, c.pid)
		sink = pl
		c.closers = append(c.closers, pl)
	} else if sl, err := dialSyslog(o.SyslogPath, tag, c.pid, "mail"); err != nil {
		sink = &writerSink{W: io.Discard}
	} else {
		sink = sl
		c.closers = append(c.closers, sl)
	}
	if args != nil && args.stderr > 0 {
		sink = newMultiSink(sink, &writerSink{W: o.Stderr, Tag: tag})
	}
	c.Logger = slog.New(newHandler(sink, c.level))
	return argsErr
}

// configure applies argv's overrides and the process macros, then expands
// the start-up parameters (a syntax error in any of them is fatal, after
// mac_expand's warnings) and reads the skeleton's parameters.
func (c *Child) configure(ctx context.Context, svc Service) error {
	cfg, args := c.Config, c.Args
	cfg.apply(args.overrides)
	cfg.set("process_name", args.processName)
	cfg.set("service_name", args.serviceName)
	cfg.set("process_id", strconv.Itoa(c.pid))
	var names []string
	if svc.StartupParams != nil {
		names = svc.StartupParams(cfg)
	}
	if err := cfg.evalParams(names); err != nil {
		if ee, ok := errors.AsType[*expandError](err); ok {
			for _, w := range ee.Warnings {
				c.Logger.Warn(w)
			}
		}
		return c.Fatal(ctx, err)
	}
	params, err := cfg.Params()
	cfg.warnings = cfg.warnings[:0]
	if err != nil {
		return c.Fatal(ctx, err)
	}
	c.Params = params
	return nil
}

// openLog switches to the final log: the tag is syslog_name/service, so
// that a binary named otherwise still logs as, say, postfix/scache. It is
// opened before chroot, like Postfix's.
func (c *Child) openLog(ctx context.Context, o StartOptions) error {
	var vstream io.Writer
	if c.Args.stderr > 0 {
		vstream = o.Stderr
	}
	sink, closer, err := openLogSink(logOptions{
		Params: c.Params, ConfigDir: c.Config.Dir, Tag: c.Params.SyslogName + "/" + c.Args.serviceName,
		PID: c.pid, SyslogPath: o.SyslogPath, Stderr: vstream,
	})
	if err != nil {
		return c.Fatal(ctx, err)
	}
	// The early log's socket is not needed any more: nothing logs to it
	// after this, and a long-lived daemon should not hold it.
	for _, cl := range c.closers {
		cl.Close()
	}
	c.closers = []io.Closer{closer}
	c.Logger = slog.New(newHandler(sink, c.level).withUTF8(c.Params.SMTPUTF8Enable))
	c.Logger.Debug("daemon started")
	return nil
}

// check runs the argument checks in multi_server_main's order, with the
// service's own parameters read between the first and the others.
func (c *Child) check(ctx context.Context, svc Service, o StartOptions) error {
	args := c.Args
	if err := args.checkStdin(o.StdinTTY()); err != nil {
		return c.Fatal(ctx, err)
	}
	if svc.Configure != nil {
		if err := svc.Configure(c.Config); err != nil {
			return c.Fatal(ctx, err)
		}
	}
	for _, check := range []func() error{args.checkSolitary, args.checkTransport} {
		if err := check(); err != nil {
			return c.Fatal(ctx, err)
		}
	}
	gen, err := c.env.parseGeneration()
	if err != nil {
		return c.Fatal(ctx, err)
	}
	if args.debugger || c.env.Debug {
		c.Logger.Warn("debugger_command is not supported by goscache; ignoring -D and MAIL_DEBUG")
	}
	if args.singleStream {
		return c.Fatal(ctx, errors.New("single-stream mode (-S) is not supported by goscache"))
	}
	// Take over master's descriptors before entering the jail.
	files, err := inheritedFiles(args.socketCount)
	if err != nil {
		return c.Fatal(ctx, err)
	}
	c.Listeners, err = netListeners(files.Listeners)
	if err != nil {
		files.Status.Close()
		return c.Fatal(ctx, err)
	}
	c.Master = newMaster(files.Status, c.pid, gen)
	return nil
}

// enter does chdir, the time zone, the user lookup, the service's last
// look at /etc, then chroot and setuid, in multi_server_main's order.
func (c *Child) enter(ctx context.Context, svc Service) error {
	if err := chdir(c.Params.QueueDirectory); err != nil {
		return c.Fatal(ctx, err)
	}
	prepareTimeZone()
	var j jail
	if c.Args.unpriv {
		owner, err := lookupOwner(c.Params.MailOwner, c.Config.Dir)
		if err != nil {
			return c.Fatal(ctx, err)
		}
		c.Owner = &owner
		j.Owner = &owner
	}
	if svc.BeforeJail != nil {
		if err := svc.BeforeJail(c); err != nil {
			return c.Fatal(ctx, err)
		}
	}
	if c.Args.chroot {
		j.Root = c.Params.QueueDirectory
	}
	if err := j.enter(); err != nil {
		return c.Fatal(ctx, err)
	}
	return nil
}

// Fatal logs err as Postfix's fatal line (a [*FatalError]'s Postfix text,
// else err's text), waits as msg_fatal does, and returns the
// [*LoggedError] the process should exit with.
func (c *Child) Fatal(ctx context.Context, err error) error {
	text := err.Error()
	if fe, ok := errors.AsType[*FatalError](err); ok {
		text = fe.Text
	}
	c.Logger.Log(ctx, LevelFatal, text)
	time.Sleep(c.fatalDelay)
	return &LoggedError{Text: text}
}

// Close closes the status channel to master, then the log sinks. The
// listeners are the caller's to close.
func (c *Child) Close() error {
	var errs []error
	if c.Master != nil {
		errs = append(errs, c.Master.close())
		c.Master = nil
	}
	for _, cl := range c.closers {
		if cl != nil {
			errs = append(errs, cl.Close())
		}
	}
	c.closers = nil
	return joinErrors(errs...)
}
