package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/cmd/goscache/startupparams"
	"github.com/goscache/goscache/cmd/internal/buildinfo"
	"github.com/goscache/goscache/mastercompat"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
	"github.com/goscache/goscache/scache/server"
)

// masterOptions are the process-level inputs of masterMain, replaceable in
// tests.
type masterOptions struct {
	lookupEnv  func(string) (string, bool) // os.LookupEnv
	syslogPath string                      // "" means /dev/log
	fatalDelay time.Duration               // Postfix's msg_fatal sleeps 1s before exiting
	stdinTTY   func() bool                 // reports whether fd 0 is a terminal
	// mailVersion returns the mail_version of the Postfix whose commands
	// are in commandDir, "" when unknown (nil: unknown).
	mailVersion func(ctx context.Context, commandDir string) string
}

// runMaster runs goscache as a child of Postfix's master(8), exactly where
// scache(8) would run: argv is the full command line master built (argv[0]
// included, e.g. "goscache -l -n scache -t unix -u -c"), the descriptors
// are master's (3/4 flow pipe, 5 status, 6.. listeners). It returns nil
// after master disconnects (postfix reload/stop) or after max_idle, having
// logged the statistics (after answering the requests that had begun to
// arrive), and an error after a fatal error, which has then
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
		mailVersion: func(ctx context.Context, commandDir string) string {
			v, _ := mastercompat.MailVersion(ctx, commandDir)
			return v
		},
	})
}

func masterMain(ctx context.Context, argv []string, stderr io.Writer, o masterOptions) error {
	var (
		ttlLimit, statusTime time.Duration
		peers                *server.PeerPolicy
		mailVersion          string
	)
	svc := mastercompat.Service{
		Name:     "scache",
		Defaults: scacheDefaults,
		// scache expands many parameters at startup (its own and the
		// global ones of mail_params_init) before it checks their types;
		// which ones depends on the Postfix release installed here.
		// The release also decides whether the service announces its
		// protocol on every connection (3.6 and later) or not (3.5).
		StartupParams: func(cfg *mastercompat.Config) []string {
			if o.mailVersion != nil {
				mailVersion = o.mailVersion(ctx, cfg.Get("command_directory"))
			}
			return startupparams.For(mailVersion)
		},
		Configure: func(cfg *mastercompat.Config) (err error) {
			if ttlLimit, err = cfg.Time("connection_cache_ttl_limit", time.Second); err != nil {
				return err
			}
			statusTime, err = cfg.Time("connection_cache_status_update_time", time.Second)
			return err
		},
		// Looked up before chroot hides /etc/passwd and /etc/group.
		BeforeJail: func(c *mastercompat.Child) (err error) {
			peers, err = masterPeers(c.Config, c.Params, c.Owner)
			return err
		},
	}
	child, err := mastercompat.Start(ctx, svc, mastercompat.StartOptions{
		Argv: argv, LookupEnv: o.lookupEnv, Stderr: stderr, SyslogPath: o.syslogPath,
		FatalDelay: o.fatalDelay, StdinTTY: o.stdinTTY,
	})
	if err != nil {
		return err
	}
	defer child.Close()
	// Postfix 3.5's smtp(8) takes an announcement for the reply to its
	// first request and turns connection caching off: under 3.5, speak
	// 3.5's protocol, as its scache does. An unknown release announces.
	announce := scache.Announces(mailVersion)
	child.Logger.Debug(fmt.Sprintf("mail_version %q: protocol announcement %v", mailVersion, announce))
	return serveMaster(ctx, child, server.Options{
		Logger:           child.Logger,
		TTLLimit:         ttlLimit,
		StatusUpdateTime: statusTime,
		IPCTimeout:       child.Params.IPCTimeout,
		Peers:            peers,
		Build:            serverBuild(),
		NoAnnouncement:   !announce,
	})
}

// serveMaster serves a Server configured by opts on the child's listeners
// until master goes away, max_idle passes without a client, or ctx is
// done, with the Busy and ConnCount hooks and the daemon_timeout watchdog
// wired to master.
func serveMaster(ctx context.Context, child *mastercompat.Child, opts server.Options) error {
	log, params := child.Logger, child.Params
	// With a process limit of 1 (-l, which scache requires), master(8)
	// uses the status records only to count that the child served once:
	// the first TAKEN/AVAIL pair is written, no pair per request
	// (docs/protocol.md §5).
	//
	// The hooks below run on the server's connection goroutines; they use
	// this copy, never child.Master, which child.Close clears.
	master := child.Master
	master.Solitary = child.Args.Alone
	idle := mastercompat.NewIdleTimer(params.MaxIdle)
	defer idle.Stop()
	opts.ConnCount = idle.ConnCount
	opts.Busy = func(busy bool) {
		if err := master.Busy(busy); err != nil {
			log.Debug("master_notify: " + err.Error())
		}
		if busy {
			// scache checks its arguments each time it serves a request
			// (scache_service), after multi_server_execute has written
			// TAKEN: a leftover argument kills it at the first request.
			if err := child.Args.CheckRest(); err != nil {
				fatalExit(ctx, child, err)
			}
		}
	}
	// Postfix's scache logs no version: goscache's is a debug line (-v)
	// under master(8), so that nothing Postfix's log readers parse changes.
	log.Debug("goscache " + buildinfo.Get().String())
	srv := server.New(opts)
	stopWatchdog := startWatchdog(params.DaemonTimeout, srv.Cache(), log)
	defer stopWatchdog()

	serveErr := make(chan error, len(child.Listeners))
	for _, l := range child.Listeners {
		go func(l net.Listener) { serveErr <- srv.Serve(l) }(l)
	}
	select {
	case <-master.Gone():
		log.Debug("master disconnect -- exiting")
	case <-idle.Done():
		log.Debug("idle timeout -- exiting")
	case <-ctx.Done():
		log.Debug("context done -- exiting")
		srv.Close()
		return nil
	case err := <-serveErr:
		// The server logged "error: accept connection: ..."; Postfix
		// treats a failing accept as fatal.
		srv.Close()
		return child.Fatal(ctx, fmt.Errorf("serve: %w", err))
	}
	drain(srv, opts.IPCTimeout)
	srv.LogStatistics() // the exit handler: master disconnect or idle timeout
	return nil
}

// drain ends the service after master(8) went away (postfix reload or
// stop) or after max_idle, as Postfix's scache ends it: no new client is
// accepted and no idle client is read from again, but a request that has
// begun to arrive is answered, within timeout (ipc_timeout, the limit
// scache's own read of it has). scache, single-threaded, notices master's
// disconnect only between requests and answers the one it is reading
// before it exits; smtp(8), which holds the queue file of the delivery it
// has just made while it saves the connection, then gets its answer
// instead of an end of file, a second's sleep and a retry
// (docs/protocol.md §6). The idle clients see the connection close, as
// they do when scache exits, and reconnect to the new process.
func drain(srv *server.Server, timeout time.Duration) {
	if timeout <= 0 {
		timeout = server.DefaultIPCTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = srv.Shutdown(ctx) // what is left after timeout is closed
}

// fatalExit is msg_fatal for an error met while serving, on whatever
// goroutine meets it: it logs Postfix's fatal line, sleeps as msg_fatal
// does (child.Fatal), and exits the process with status 1 at once, as
// msg_fatal's _exit(1) does. Nothing else runs: the request gets no reply,
// master gets no AVAIL record (it sees the TAKEN record, then exit status 1,
// and throttles the service as for the real scache), and no statistics are
// logged; the kernel closes the descriptors.
func fatalExit(ctx context.Context, child *mastercompat.Child, err error) {
	_ = child.Fatal(ctx, err) // the *LoggedError: the line is logged, exit 1 follows
	os.Exit(1)
}

// startWatchdog arms the daemon_timeout watchdog. It is kicked by a
// goroutine that takes the cache lock, so a wedged cache kills the process
// as a stuck Postfix event loop would. The function returned stops both.
func startWatchdog(timeout time.Duration, cache *cache.Cache, log *slog.Logger) (stop func()) {
	watchdog := mastercompat.NewWatchdog(timeout, func() {
		log.Log(context.Background(), mastercompat.LevelFatal, "watchdog timeout")
		os.Exit(1)
	})
	stopKick := make(chan struct{})
	go func() {
		t := time.NewTicker(max(timeout/4, time.Second))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				cache.Size()
				watchdog.Kick()
			case <-stopKick:
				return
			}
		}
	}()
	return func() {
		close(stopKick)
		watchdog.Stop()
	}
}

// allowGroupParam names the group whose members may use the service
// besides root, the daemon's user and mail_owner (main.cf or -o).
const allowGroupParam = "goscache_allow_group"

// masterPeers builds the peer check of a master(8) child: root, the
// process's own user (mail_owner after -u), mail_owner in any case, and the
// members of goscache_allow_group. master's private/ directory already
// keeps others out; this is defence in depth. owner is mail_owner when -u
// looked it up already.
func masterPeers(cfg *mastercompat.Config, params mastercompat.Params, owner *mastercompat.Owner) (*server.PeerPolicy, error) {
	p := &server.PeerPolicy{}
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
