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
	// prints them, added to the skeleton's (see [Config.AddDefaults]).
	Defaults map[string]string
	// StartupParams, when set, returns the parameters the service expands
	// at start-up, once main.cf and argv's overrides are in (the list may
	// depend on them); a syntax error in any of them is fatal (see
	// [Config.EvalParams]).
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

// Child is a started master(8) child: its arguments, environment and
// configuration, its logger, the listeners master handed it and the
// status channel back to master. Close releases the status channel and the
// log sinks.
type Child struct {
	Args      *Args
	Env       Env
	Config    *Config
	Params    Params
	Owner     *Owner // mail_owner when -u asked for it, else nil
	Logger    *slog.Logger
	Level     *slog.LevelVar // debug under -v or MAIL_VERBOSE
	Listeners []net.Listener
	Master    *Master
	PID       int

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
	c := &Child{PID: os.Getpid(), Level: new(slog.LevelVar), fatalDelay: o.FatalDelay}
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
	cfg, err := ReadConfig(c.Env.ConfigDir)
	if err != nil {
		return c.Fatal(ctx, err)
	}
	c.Config = cfg
	cfg.AddDefaults(svc.Defaults)
	for _, w := range cfg.Warnings {
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
	c.Env = ReadEnv(o.LookupEnv)
	if c.Env.Verbose {
		c.Level.Set(slog.LevelDebug)
	}
	args, argsErr := ParseArgs(o.Argv)
	service := svc.Name
	if args != nil {
		c.Args = args
		service = args.ServiceName
		if args.Verbose > 0 {
			c.Level.Set(slog.LevelDebug)
		}
	}
	logTag := c.Env.LogTag
	if logTag == "" {
		logTag = "postfix"
	}
	tag := logTag + "/" + service
	var sink Sink
	if c.Env.PostlogService != "" {
		host := c.Env.PostlogHostname
		if host == "" {
			host = "amnesiac"
		}
		pl, _ := DialPostlog(c.Env.PostlogService, tag, host, c.PID)
		sink = pl
		c.closers = append(c.closers, pl)
	} else if sl, err := DialSyslog(o.SyslogPath, tag, c.PID, "mail"); err != nil {
		sink = &WriterSink{W: io.Discard}
	} else {
		sink = sl
		c.closers = append(c.closers, sl)
	}
	if args != nil && args.Stderr > 0 {
		sink = MultiSink(sink, &WriterSink{W: o.Stderr, Tag: tag})
	}
	c.Logger = slog.New(NewHandler(sink, c.Level))
	return argsErr
}

// configure applies argv's overrides and the process macros, then expands
// the start-up parameters (a syntax error in any of them is fatal, after
// mac_expand's warnings) and reads the skeleton's parameters.
func (c *Child) configure(ctx context.Context, svc Service) error {
	cfg, args := c.Config, c.Args
	cfg.Apply(args.Overrides)
	cfg.Set("process_name", args.ProcessName)
	cfg.Set("service_name", args.ServiceName)
	cfg.Set("process_id", strconv.Itoa(c.PID))
	var names []string
	if svc.StartupParams != nil {
		names = svc.StartupParams(cfg)
	}
	if err := cfg.EvalParams(names); err != nil {
		if ee, ok := errors.AsType[*ExpandError](err); ok {
			for _, w := range ee.Warnings {
				c.Logger.Warn(w)
			}
		}
		return c.Fatal(ctx, err)
	}
	params, err := cfg.Params()
	cfg.Warnings = cfg.Warnings[:0]
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
	if c.Args.Stderr > 0 {
		vstream = o.Stderr
	}
	sink, closer, err := OpenLog(LogOptions{
		Params: c.Params, ConfigDir: c.Config.Dir, Tag: c.Params.SyslogName + "/" + c.Args.ServiceName,
		PID: c.PID, SyslogPath: o.SyslogPath, Stderr: vstream,
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
	c.Logger = slog.New(NewHandler(sink, c.Level).WithUTF8(c.Params.SMTPUTF8Enable))
	c.Logger.Debug("daemon started")
	return nil
}

// check runs the argument checks in multi_server_main's order, with the
// service's own parameters read between the first and the others.
func (c *Child) check(ctx context.Context, svc Service, o StartOptions) error {
	args := c.Args
	if err := args.CheckStdin(o.StdinTTY()); err != nil {
		return c.Fatal(ctx, err)
	}
	if svc.Configure != nil {
		if err := svc.Configure(c.Config); err != nil {
			return c.Fatal(ctx, err)
		}
	}
	for _, check := range []func() error{args.CheckSolitary, args.CheckTransport} {
		if err := check(); err != nil {
			return c.Fatal(ctx, err)
		}
	}
	gen, err := c.Env.ParseGeneration()
	if err != nil {
		return c.Fatal(ctx, err)
	}
	if args.Debugger || c.Env.Debug {
		c.Logger.Warn("debugger_command is not supported by goscache; ignoring -D and MAIL_DEBUG")
	}
	if args.SingleStream {
		return c.Fatal(ctx, errors.New("single-stream mode (-S) is not supported by goscache"))
	}
	// Take over master's descriptors before entering the jail.
	files, err := InheritedFiles(args.SocketCount)
	if err != nil {
		return c.Fatal(ctx, err)
	}
	c.Listeners, err = Listeners(files.Listeners)
	if err != nil {
		files.Status.Close()
		return c.Fatal(ctx, err)
	}
	c.Master = NewMaster(files.Status, c.PID, gen)
	return nil
}

// enter does chdir, the time zone, the user lookup, the service's last
// look at /etc, then chroot and setuid, in multi_server_main's order.
func (c *Child) enter(ctx context.Context, svc Service) error {
	if err := Chdir(c.Params.QueueDirectory); err != nil {
		return c.Fatal(ctx, err)
	}
	PrepareTimeZone()
	var jail Jail
	if c.Args.Unpriv {
		owner, err := LookupOwner(c.Params.MailOwner, c.Config.Dir)
		if err != nil {
			return c.Fatal(ctx, err)
		}
		c.Owner = &owner
		jail.Owner = &owner
	}
	if svc.BeforeJail != nil {
		if err := svc.BeforeJail(c); err != nil {
			return c.Fatal(ctx, err)
		}
	}
	if c.Args.Chroot {
		jail.Root = c.Params.QueueDirectory
	}
	if err := jail.Enter(); err != nil {
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
		errs = append(errs, c.Master.Close())
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
