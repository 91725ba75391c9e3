package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/mastercompat"
	"github.com/goscache/goscache/scache"
)

// masterOptions are the process-level inputs of masterMain, replaceable in
// tests.
type masterOptions struct {
	lookupEnv  func(string) (string, bool) // os.LookupEnv
	syslogPath string                      // "" means /dev/log
	fatalDelay time.Duration               // Postfix's msg_fatal sleeps 1s before exiting
	stdinTTY   func() bool                 // reports whether fd 0 is a terminal
}

// errFatal reports that a fatal error was logged in Postfix's format; the
// process should exit with status 1.
type errFatal struct{ text string }

func (e errFatal) Error() string { return "fatal: " + e.text }

// runMaster runs goscache as a child of Postfix's master(8), exactly where
// scache(8) would run: argv is the full command line master built (argv[0]
// included, e.g. "goscache -l -n scache -t unix -u -c"), the descriptors
// are master's (3/4 flow pipe, 5 status, 6.. listeners). It returns nil
// after master disconnects (postfix reload/stop) or after max_idle, having
// logged the statistics, and an error after a fatal error, which has then
// been logged as "fatal: ..." to Postfix's log. SIGTERM kills the process
// at once without statistics, as it does scache(8). stderr receives the
// log lines as well when master passes -V.
func runMaster(ctx context.Context, argv []string, stderr io.Writer) error {
	return masterMain(ctx, argv, stderr, masterOptions{
		lookupEnv:  os.LookupEnv,
		fatalDelay: time.Second,
		stdinTTY: func() bool {
			_, err := unix.IoctlGetTermios(0, unix.TCGETS)
			return err == nil
		},
	})
}

func masterMain(ctx context.Context, argv []string, stderr io.Writer, o masterOptions) error {
	// Like multi_server_main: ignore SIGPIPE and SIGXFSZ, install nothing
	// for SIGTERM and SIGHUP (master's "postfix stop" signal must kill us
	// without statistics), and never change the process group.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGXFSZ)
	signal.Reset(syscall.SIGTERM, syscall.SIGHUP)

	pid := os.Getpid()
	env := mastercompat.ReadEnv(o.lookupEnv)
	var level slog.LevelVar
	if env.Verbose {
		level.Set(slog.LevelDebug)
	}

	// Parse argv first (it has no side effects) so the early log tag can
	// use the service name; errors are reported in Postfix's order, after
	// main.cf was read.
	args, argsErr := mastercompat.ParseArgs(argv)
	service := "scache"
	if args != nil {
		service = args.ServiceName
		if args.Verbose > 0 {
			level.Set(slog.LevelDebug)
		}
	}

	// Early logging, before main.cf: the tag from MAIL_LOGTAG, postlog if
	// master exported POSTLOG_SERVICE, else syslog (maillog_client_init).
	logTag := env.LogTag
	if logTag == "" {
		logTag = "postfix"
	}
	earlySink, earlyCloser := earlyLog(env, logTag+"/"+service, pid, o.syslogPath, args, stderr)
	log := slog.New(mastercompat.NewHandler(earlySink, &level))
	closers := []io.Closer{earlyCloser}
	defer func() {
		for _, c := range closers {
			if c != nil {
				c.Close()
			}
		}
	}()
	fatal := func(err error) error {
		text := err.Error()
		if fe, ok := errors.AsType[*mastercompat.FatalError](err); ok {
			text = fe.Text
		}
		log.Log(ctx, mastercompat.LevelFatal, text)
		time.Sleep(o.fatalDelay)
		return errFatal{text}
	}

	cfg, err := mastercompat.ReadConfig(env.ConfigDir)
	if err != nil {
		return fatal(err)
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if argsErr != nil {
		return fatal(argsErr)
	}
	cfg.Apply(args.Overrides)
	cfg.Set("process_name", args.ProcessName)
	cfg.Set("service_name", args.ServiceName)
	cfg.Set("process_id", strconv.Itoa(pid))
	// scache expands many parameters at startup (its own and the global
	// ones of mail_params_init) before it checks their types; a syntax
	// error in any of them is fatal, after mac_expand's warnings.
	if err := cfg.EvalParams(mastercompat.StartupParams()); err != nil {
		if ee, ok := errors.AsType[*mastercompat.ExpandError](err); ok {
			for _, w := range ee.Warnings {
				log.Warn(w)
			}
		}
		return fatal(err)
	}
	params, err := cfg.Params()
	cfg.Warnings = cfg.Warnings[:0]
	if err != nil {
		return fatal(err)
	}

	// Final logging: the tag is syslog_name/service, so that a binary
	// named goscache still logs as postfix/scache (OBSERVED.md). Opened
	// before chroot, like Postfix's.
	var vstream io.Writer
	if args.Stderr > 0 {
		vstream = stderr
	}
	sink, closer, err := mastercompat.OpenLog(mastercompat.LogOptions{
		Params: params, ConfigDir: cfg.Dir, Tag: params.SyslogName + "/" + args.ServiceName,
		PID: pid, SyslogPath: o.syslogPath, Stderr: vstream,
	})
	if err != nil {
		return fatal(err)
	}
	closers = append(closers, closer)
	log = slog.New(mastercompat.NewHandler(sink, &level).WithUTF8(params.SMTPUTF8Enable))
	log.Debug("daemon started")

	if err := args.CheckStdin(o.stdinTTY()); err != nil {
		return fatal(err)
	}
	ttlLimit, err := cfg.Time("connection_cache_ttl_limit", time.Second)
	if err != nil {
		return fatal(err)
	}
	statusTime, err := cfg.Time("connection_cache_status_update_time", time.Second)
	if err != nil {
		return fatal(err)
	}
	for _, check := range []func() error{args.CheckSolitary, args.CheckTransport} {
		if err := check(); err != nil {
			return fatal(err)
		}
	}
	gen, err := env.ParseGeneration()
	if err != nil {
		return fatal(err)
	}
	if args.Debugger || env.Debug {
		log.Warn("debugger_command is not supported by goscache; ignoring -D and MAIL_DEBUG")
	}
	if args.SingleStream {
		return fatal(errors.New("single-stream mode (-S) is not supported by goscache"))
	}

	// Take over master's descriptors before entering the jail.
	files, err := mastercompat.InheritedFiles(args.SocketCount)
	if err != nil {
		return fatal(err)
	}
	listeners, err := mastercompat.Listeners(files.Listeners)
	if err != nil {
		files.Status.Close()
		return fatal(err)
	}
	master := mastercompat.NewMaster(files.Status, pid, gen)
	// With a process limit of 1 (-l, which scache requires), master(8)
	// uses the status records only to count that the child served once:
	// the first TAKEN/AVAIL pair is written, no pair per request
	// (docs/protocol.md §5).
	master.Solitary = args.Alone
	defer master.Close()

	// chdir, time zone, user lookup, then chroot and setuid, in
	// multi_server_main's order.
	if err := mastercompat.Chdir(params.QueueDirectory); err != nil {
		return fatal(err)
	}
	mastercompat.PrepareTimeZone()
	var jail mastercompat.Jail
	if args.Unpriv {
		owner, err := mastercompat.LookupOwner(params.MailOwner, cfg.Dir)
		if err != nil {
			return fatal(err)
		}
		jail.Owner = &owner
	}
	// Looked up before chroot hides /etc/passwd and /etc/group.
	peers, err := masterPeers(cfg, params, jail.Owner)
	if err != nil {
		return fatal(err)
	}
	if args.Chroot {
		jail.Root = params.QueueDirectory
	}
	if err := jail.Enter(); err != nil {
		return fatal(err)
	}

	idle := mastercompat.NewIdleTimer(params.MaxIdle)
	defer idle.Stop()
	fatalCh := make(chan error, 1)
	srv := &scache.Server{
		Logger:           log,
		TTLLimit:         ttlLimit,
		StatusUpdateTime: statusTime,
		IPCTimeout:       params.IPCTimeout,
		Peers:            peers,
		ConnCount:        idle.ConnCount,
		Busy: func(busy bool) {
			if busy {
				// scache checks its arguments when it serves the first
				// request (scache_service).
				if err := args.CheckRest(); err != nil {
					select {
					case fatalCh <- err:
					default:
					}
				}
			}
			if err := master.Busy(busy); err != nil {
				log.Debug("master_notify: " + err.Error())
			}
		},
	}
	srv.Stats() // initialize, so that srv.Cache is set

	// daemon_timeout: the watchdog is kicked by a goroutine that takes the
	// cache lock, so a wedged cache kills the process as a stuck Postfix
	// event loop would.
	watchdog := mastercompat.NewWatchdog(params.DaemonTimeout, func() {
		log.Log(context.Background(), mastercompat.LevelFatal, "watchdog timeout")
		os.Exit(1)
	})
	defer watchdog.Stop()
	stopKick := make(chan struct{})
	defer close(stopKick)
	go func() {
		t := time.NewTicker(max(params.DaemonTimeout/4, time.Second))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				srv.Cache.Size()
				watchdog.Kick()
			case <-stopKick:
				return
			}
		}
	}()

	serveErr := make(chan error, len(listeners))
	for _, l := range listeners {
		go func(l net.Listener) { serveErr <- srv.Serve(l) }(l)
	}
	var result error
	select {
	case <-master.Gone():
		log.Debug("master disconnect -- exiting")
	case <-idle.Done():
		log.Debug("idle timeout -- exiting")
	case <-ctx.Done():
		log.Debug("context done -- exiting")
	case err := <-serveErr:
		// The server logged "error: accept connection: ..."; Postfix
		// treats a failing accept as fatal.
		result = fatal(fmt.Errorf("serve: %w", err))
	case err := <-fatalCh:
		return fatal(err)
	}
	if result == nil {
		srv.LogStatistics() // the exit handler: master disconnect or idle timeout
	}
	srv.Close()
	return result
}

// allowGroupParam names the group whose members may use the service
// besides root, the daemon's user and mail_owner (main.cf or -o).
const allowGroupParam = "goscache_allow_group"

// masterPeers builds the peer check of a master(8) child: root, the
// process's own user (mail_owner after -u), mail_owner in any case, and the
// members of goscache_allow_group. master's private/ directory already
// keeps others out; this is defence in depth. owner is mail_owner when -u
// looked it up already.
func masterPeers(cfg *mastercompat.Config, params mastercompat.Params, owner *mastercompat.Owner) (*scache.PeerPolicy, error) {
	p := &scache.PeerPolicy{}
	if owner != nil {
		p.UIDs = append(p.UIDs, owner.UID)
	} else if u, err := user.Lookup(params.MailOwner); err == nil {
		if uid, err := strconv.Atoi(u.Uid); err == nil {
			p.UIDs = append(p.UIDs, uid)
		}
	}
	if name := cfg.Get(allowGroupParam); name != "" {
		gid, err := lookupGroup(name)
		if err != nil {
			return nil, &mastercompat.FatalError{Text: fmt.Sprintf("file %s/main.cf: parameter %s: unknown group name: %s", cfg.Dir, allowGroupParam, name), Err: err}
		}
		p.GIDs = append(p.GIDs, gid)
	}
	return p, nil
}

// lookupGroup resolves a group name to a gid; a decimal number is taken as
// a gid as it is, as chown(1) takes it.
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if gid, nerr := strconv.ParseUint(name, 10, 31); nerr == nil {
			return int(gid), nil
		}
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

// earlyLog picks the log sink used before main.cf is read.
func earlyLog(env mastercompat.Env, tag string, pid int, syslogPath string, args *mastercompat.Args, stderr io.Writer) (mastercompat.Sink, io.Closer) {
	var (
		sink   mastercompat.Sink
		closer io.Closer
	)
	if env.PostlogService != "" {
		host := env.PostlogHostname
		if host == "" {
			host = "amnesiac"
		}
		pl, _ := mastercompat.DialPostlog(env.PostlogService, tag, host, pid)
		sink, closer = pl, pl
	} else {
		sl, err := mastercompat.DialSyslog(syslogPath, tag, pid, "mail")
		if err != nil {
			sink = &mastercompat.WriterSink{W: io.Discard}
		} else {
			sink, closer = sl, sl
		}
	}
	if args != nil && args.Stderr > 0 {
		sink = mastercompat.MultiSink(sink, &mastercompat.WriterSink{W: stderr, Tag: tag})
	}
	return sink, closer
}
